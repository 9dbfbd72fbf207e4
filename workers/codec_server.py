"""`amsm codec-server`: lets the Temporal Web UI show encrypted payloads.

Implements Temporal's codec-server protocol (POST /encode and /decode with the JSON
form of Payloads). Bound to 127.0.0.1 by default: whoever reaches it can decrypt.
"""

from __future__ import annotations

import asyncio
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from workers.codec import AesGcmCodec


def make_handler(codec: AesGcmCodec, origins: list[str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _cors(self) -> None:
            origin = self.headers.get("Origin")
            if origin and origin in origins:
                self.send_header("Access-Control-Allow-Origin", origin)
                self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
                self.send_header("Access-Control-Allow-Headers", "Content-Type, X-Namespace")
                self.send_header("Access-Control-Allow-Credentials", "true")

        def do_OPTIONS(self) -> None:  # noqa: N802 (http.server's naming)
            self.send_response(200)
            self._cors()
            self.end_headers()

        def do_POST(self) -> None:  # noqa: N802
            if self.path not in ("/encode", "/decode"):
                self.send_error(404, "POST /encode or /decode")
                return
            try:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                payloads = json_format.Parse(body, Payloads())
                fn = codec.encode if self.path == "/encode" else codec.decode
                result = asyncio.run(fn(list(payloads.payloads)))
                out = json_format.MessageToJson(Payloads(payloads=result)).encode()
            except Exception as e:  # a bad request or an unknown key: answer, do not crash
                self.send_response(400)
                self._cors()
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps({"error": str(e)}).encode())
                return
            self.send_response(200)
            self._cors()
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, format: str, *args: object) -> None:
            sys.stderr.write(f"codec-server: {self.address_string()} {format % args}\n")

    return Handler


def serve(codec: AesGcmCodec, bind: str, port: int, origins: list[str]) -> ThreadingHTTPServer:
    return ThreadingHTTPServer((bind, port), make_handler(codec, origins))
