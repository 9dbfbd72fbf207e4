"""Restarting a Windows host and waiting until it is back, with a later boot, for good.

A boot is told by the host's uptime, never by its clock (windows_facts.Boot: a clock
stepped forward would fake a boot, one stepped back would hide it). Back means up with
the same boot for `timing.settle_time`; once the restart is sent, a host that answers
with an error (CommandFailed: WMI still starting) is waited out as one that does not
answer, its last error named at `timing.reboot_timeout`. A host in a boot loop (a third
boot seen since the restart) fails at once, naming the host, so the operator decides
instead of the retries hiding it.

After a client's restart, `await_mount` waits for its iSCSI login and V: volume.

Resumable: where the restart is (the boot before it, whether it was sent) is handed to
`beat` whenever it changes and regularly in between; the activity keeps it in its
heartbeat details, and a retry after a worker crash passes it back as `resume`, so it
neither restarts the host twice nor waits for a restart that never happened.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from activities.drivers.errors import CommandFailed, Unreachable
from activities.drivers.facts import clients as clients_facts
from activities.drivers.facts import windows as windows_facts
from activities.drivers.host import HostDriver
from activities.drivers.operations import windows as windows_ops
from inventory.models import Inventory, Side, Timing


def first_line(message: str) -> str:
    """The first line of a host's error (PowerShell adds where it happened below)."""
    return message.strip().splitlines()[0] if message.strip() else message


@dataclass(frozen=True)
class RestartState:
    """Where a restart is: what a retry resumes from."""

    before: float  # the host's boot before the restart (windows_facts.Boot.latest)
    sent: bool = False  # the restart went out


@dataclass(frozen=True)
class Restarted:
    """A restart done: its sentence, the boot the host came back with, its last state."""

    sentence: str
    booted: float
    state: RestartState


async def restart_and_wait(
    drv: HostDriver,
    timing: Timing,
    what: str,
    beat: Callable[[RestartState], None],
    beat_every: float,
    resume: RestartState | None = None,
    just_read: bool = False,
    booted: float | None = None,
) -> Restarted:
    """Restart the host behind `drv` and wait until it is back for good (see the module).

    `what` ends its sentences (" (1/2)"); `beat` is called with the state when it changes
    and at least every `beat_every` seconds. `resume`: the state a prior attempt left
    (None: read the boot now); `just_read`: its boot was read by this attempt, with
    nothing restarted since (the restart goes out at once: one command less per
    restart, and hundreds of clients restart together); `booted`: the host's last boot
    the caller knows of, so that a later one counts as this restart done when no state
    says so (the first heartbeat can be lost with the worker).

    Raises CommandFailed for a host that answers with an error before the restart went
    out, a boot loop, and a host not back for good within `timing.reboot_timeout`."""
    watch = _Watch(drv, timing, what, beat, beat_every)
    await watch.start(resume, just_read, booted)
    while True:
        seen = await watch.look()
        settling = False
        if seen is not None and seen.after(watch.state.before, timing.boot_tolerance):
            done = watch.came_back(seen)
            if done is not None:
                return done
            settling = True
        watch.beat_if_due()
        watch.check_deadline()
        await asyncio.sleep(watch.delay(settling))


@dataclass
class _Watch:
    """One restart under way: its state and what has been seen since it went out."""

    drv: HostDriver
    timing: Timing
    what: str
    beat: Callable[[RestartState], None]
    beat_every: float
    state: RestartState = RestartState(before=0.0)
    fresh: bool = False  # the boot was just read: the restart goes out without reading it
    started: float = field(default_factory=time.monotonic)
    beaten: tuple[float, bool] = (0.0, False)  # when the last beat went, and its `sent`
    boots: list[float] = field(default_factory=list)  # boots seen since (their latest)
    up_since: float = 0.0
    failed: CommandFailed | None = None  # the host's last error since the restart

    async def start(
        self, resume: RestartState | None, just_read: bool, booted: float | None
    ) -> None:
        self.fresh = just_read or resume is None
        if resume is not None:
            self.state = resume
        else:
            now = await windows_facts.boot(self.drv)
            self.state = RestartState(before=now.latest)
            if booted is not None and now.after(booted, self.timing.boot_tolerance):
                # Booted since the boot the caller knows of: this restart went out and
                # the attempt that sent it was lost before it could say so.
                self.state, self.fresh = RestartState(before=booted, sent=True), False
        self._beat()

    def _beat(self) -> None:
        self.beat(self.state)
        self.beaten = (time.monotonic(), self.state.sent)

    async def look(self) -> windows_facts.Boot | None:
        """Read the host's boot, and send the restart while it has not gone out and the
        host has not booted since: the boot seen, or None (not read, or no answer)."""
        seen = None
        try:
            seen = None if self.fresh else await windows_facts.boot(self.drv)
            self.fresh = False
            self.failed = None
            later = seen is not None and seen.after(self.state.before, self.timing.boot_tolerance)
            if not self.state.sent and not later:
                await windows_ops.restart(self.drv)
                self.state = replace(self.state, sent=True)
        except Unreachable:
            pass  # down while it reboots
        except CommandFailed as e:
            if not self.state.sent:
                raise  # before the restart: the host's answer, not a boot under way
            # Early in a boot the host answers before WMI does (Winmgmt starts as a
            # service of its own, beside sshd and WinRM): Win32_OperatingSystem fails
            # for a while. Waited out like a host that does not answer, and named if
            # the deadline passes.
            self.failed = e
        return seen

    def came_back(self, seen: windows_facts.Boot) -> Restarted | None:
        """A later boot seen: counted (a third is a boot loop); the restart done once
        the host has stayed up with it for the settle time."""
        t = self.timing
        if not self.boots or seen.after(self.boots[-1], t.boot_tolerance):
            self.boots.append(seen.latest)
            self.up_since = time.monotonic()
            if len(self.boots) >= 3:
                raise CommandFailed(
                    self.drv.name,
                    f"keeps restarting by itself after the restart{self.what}: "
                    f"{len(self.boots)} boots seen in {time.monotonic() - self.started:.0f} s, "
                    f"none stayed up {t.settle_time:g} s (a boot loop?)",
                )
        if time.monotonic() - self.up_since < t.settle_time:
            return None
        took = self.up_since - self.started
        return Restarted(
            sentence=f"{self.drv.name} restarted{self.what} in {took:.1f} s",
            booted=self.boots[-1],
            state=self.state,
        )

    def beat_if_due(self) -> None:
        """A beat when the state changed, else often enough for the heartbeat timeout:
        each costs the worker's event loop (hundreds of restarts are polled at once)."""
        last, sent = self.beaten
        if self.state.sent != sent or time.monotonic() - last >= self.beat_every:
            self._beat()

    def check_deadline(self) -> None:
        t = self.timing
        if time.monotonic() <= self.started + t.reboot_timeout:
            return
        last = f"; its last answer: {first_line(self.failed.message)}" if self.failed else ""
        if self.boots:
            raise CommandFailed(
                self.drv.name,
                f"came back after the restart{self.what} but did not stay up "
                f"{t.settle_time:g} s within {t.reboot_timeout:.0f} s{last}",
            )
        raise CommandFailed(
            self.drv.name,
            f"did not come back within {t.reboot_timeout:.0f} s of restart{self.what}{last}",
        )

    def delay(self, settling: bool) -> float:
        """Until the next look: the poll interval; up and settling, one look when the
        settle time is over (a boot in between shows as a later boot), heartbeating on
        the way."""
        t = self.timing
        if not settling:
            return t.poll_interval
        left = self.up_since + t.settle_time - time.monotonic()
        return max(t.poll_interval, min(left, t.heartbeat_timeout / 3))


async def await_mount(
    drv: HostDriver, inv: Inventory, to: Side, what: str, beat: Callable[[], None]
) -> None:
    """Wait, after a client's restart, until it is logged in to `to`'s target and has
    V:, polling every `timing.poll_interval` and calling `beat` at each look (the caller
    heartbeats the restart's state, so that a retry still resumes it), for at most
    `timing.mount_timeout`.

    The host answering says nothing of either: the iSCSI initiator logs in again and
    StorNext mounts V: in services that start beside sshd and WinRM, not before them
    (Microsoft Learn, SetupPersistentIScsiDevices: only a service configured to depend on
    MSiSCSI waits for the persistent volumes; StorNext reads fsnameservers when its
    services start). A CommandFailed from the host (its providers still starting) is
    waited out too. Raises CommandFailed naming what is still missing, the host's last
    error among it."""
    t = inv.timing
    started = time.monotonic()
    target = inv.sides[to].iscsi_target
    while True:
        missing = []
        try:
            seen = await clients_facts.mount_state(drv, inv, to)
            if not seen.sessions:
                missing.append(f"no iSCSI session to {to}'s target {target}")
            if not seen.volume:
                missing.append("no V: drive")
        except Unreachable:
            missing.append("it did not answer")
        except CommandFailed as e:
            # Early in a boot the host answers before its providers do: the iSCSI
            # cmdlets (CIM classes served through WMI) fail while Winmgmt and the
            # initiator service start, services of their own beside sshd and WinRM.
            # Waited out like a host that does not answer; named at the deadline.
            missing.append(f"it answered with an error: {first_line(e.message)}")
        if not missing:
            return
        beat()
        if time.monotonic() - started >= t.mount_timeout:
            raise CommandFailed(
                drv.name,
                f"{drv.name} did not log in to {to} and mount V: within "
                f"{t.mount_timeout:g} s of answering after the restart{what}: "
                f"{'; '.join(missing)}",
            )
        await asyncio.sleep(min(t.poll_interval, t.heartbeat_timeout / 3))
