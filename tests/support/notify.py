"""Where a test's messages go (docs/operators/notifications.md): a local HTTP sink that
Apprise's `json://` posts to, a local SMTP server (aiosmtpd) that Apprise's `mailto://`
sends to, and the Apprise YAML config naming them (0600, as the worker wants it)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml
from aiosmtpd.controller import Controller

from lab.init import free_ports


@dataclass
class HttpSink:
    """Every JSON body posted to it, with the path it was posted to."""

    port: int
    posts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def titles(self, path: str | None = None) -> list[str]:
        return [str(b.get("title")) for p, b in self.posts if path is None or p == f"/{path}"]


@contextmanager
def http_sink() -> Iterator[HttpSink]:
    sink = HttpSink(port=free_ports(1)[0])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            size = int(self.headers.get("Content-Length", 0))
            sink.posts.append((self.path, json.loads(self.rfile.read(size) or b"{}")))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", sink.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class MailSink:
    port: int
    mails: list[Message] = field(default_factory=list)

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for m in self.mails]

    def text(self, about: str) -> str:
        """The text of the first mail whose subject names `about` (its plain-text part)."""
        mail = next(m for m in self.mails if about in str(m["Subject"]))
        for part in mail.walk():
            if part.get_content_type() in ("text/plain", "text/html"):
                payload = part.get_payload(decode=True)
                if isinstance(payload, bytes):
                    return payload.decode(part.get_content_charset() or "utf-8")
        raise AssertionError(f"no text in the mail about {about}")

    def url(self, to: str) -> str:
        return f"mailto://amsm@127.0.0.1:{self.port}?to={to}&from=amsm@example.org&mode=insecure"


@contextmanager
def smtp_sink() -> Iterator[MailSink]:
    sink = MailSink(port=free_ports(1)[0])

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            sink.mails.append(message_from_bytes(envelope.original_content))
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


def write_config(path: Path, urls: dict[str, str]) -> Path:
    """An Apprise YAML config: each URL with its tags (`waiting, runs`), mode 0600."""
    data = {"version": 1, "urls": [{url: [{"tag": tags}]} for url, tags in urls.items()]}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    path.chmod(0o600)
    return path
