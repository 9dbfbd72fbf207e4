"""Telling people (docs/operators/notifications.md): one message to one Apprise tag, from
the Apprise YAML config the inventory names. The config stays on the worker (its URLs
hold tokens and passwords); a workflow sends only the words. A delivery that fails is a
result, never an error: nobody's run waits on a mail server."""

from __future__ import annotations

import asyncio
import logging
import re
import stat
from pathlib import Path

from temporalio import activity

from activities.models import Notice, NoticeResult
from activities.support import FamilyActivities

# One delivery's time limit, under the activity's own (workflows/notify.py DELIVERY).
SEND_SECONDS = 20.0
# Apprise's log may quote a service's URL (a token, a password in it): never passed on.
URL_RE = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)


def config_problem(path: Path) -> str | None:
    """Why the config file cannot be used (as the console's accounts file: 0600)."""
    try:
        st = path.stat()
    except OSError as e:
        return f"notify config {path}: cannot read it ({e.strerror or e})"
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        return (
            f"notify config {path}: readable by others (mode {stat.S_IMODE(st.st_mode):o}); "
            f"chmod 600 {path}"
        )
    return None


def send(path: Path, tag: str, subject: str, body: str) -> NoticeResult:
    """Deliver through every service of the config tagged `tag` (blocking: Apprise)."""
    # Loaded here, by the worker when it sends: the CLI, the console and the workflows
    # import this module only for the activity's reference, and Apprise's hundred
    # services cost the CLI a third of a second at every start.
    import apprise

    problem = config_problem(path)
    if problem:
        return NoticeResult(delivered=False, error=problem)
    config = apprise.AppriseConfig()
    if not config.add(str(path)):
        return NoticeResult(delivered=False, error=f"notify config {path}: not an Apprise config")
    ap = apprise.Apprise()
    ap.add(config)
    if not list(ap.find(tag=tag)):
        return NoticeResult(
            delivered=False, error=f"not delivered: no service in {path} has the tag {tag!r}"
        )
    with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as log:
        sent = ap.notify(body=body, title=subject, tag=tag)
    if sent:
        return NoticeResult(delivered=True)
    lines = [ln.strip() for ln in log.getvalue().splitlines() if ln.strip()]
    why = URL_RE.sub("<url>", "; ".join(lines[-3:])) or "the service refused the message"
    return NoticeResult(delivered=False, error=f"not delivered to {tag!r}: {why}"[:500])


class NotifyActivities(FamilyActivities):
    @activity.defn(name="notify")
    async def notify(self, notice: Notice) -> NoticeResult:
        """Send `notice` to its audience's tag; a failure is the result's error text."""
        self.ctx.check_pair(notice.pair)
        return await self._send(notice.audience, notice.subject, notice.body)

    async def _send(self, tag: str, subject: str, body: str) -> NoticeResult:
        n = self.inv.notify
        if n is None:
            return NoticeResult(delivered=False, error="the inventory has no `notify` section")
        path = self.ctx.creds.resolve_file(n.config)
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(send, path, tag, subject, body), SEND_SECONDS
            )
        except TimeoutError:
            return NoticeResult(
                delivered=False, error=f"not delivered to {tag!r}: no answer in {SEND_SECONDS:g} s"
            )
        except Exception as e:  # Apprise's own failure: a result, never a failed run
            why = URL_RE.sub("<url>", f"{type(e).__name__}: {e}")
            return NoticeResult(delivered=False, error=f"not delivered to {tag!r}: {why}"[:500])
