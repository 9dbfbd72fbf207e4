"""How the worker and the CLI reach Temporal: address, namespace, TLS, API key, codec.

Kept apart from the worker so that the CLI starts without loading the activities.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import TLSConfig

from wire.codec import CodecConfigError, data_converter, load_codec


@dataclass
class Connection:
    """How to reach Temporal: address, namespace, TLS / mutual TLS, API key, payload codec.

    The API key is read from the environment (TEMPORAL_API_KEY), or from the file
    TEMPORAL_API_KEY_FILE names (the JWT `amsm auth init` wrote; docs/site/production.md),
    never from a flag, so it stays out of shell histories and process lists.
    """

    address: str = "localhost:7233"
    namespace: str = "default"
    tls: bool = False
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_server_name: str | None = None
    codec_key_file: str | None = None

    def tls_config(self) -> TLSConfig | bool:
        if not (self.tls or self.tls_ca or self.tls_cert):
            return False
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConnectionConfigError("mutual TLS needs both --tls-cert and --tls-key")

        def read(path: str | None, what: str) -> bytes | None:
            if path is None:
                return None
            try:
                return Path(path).read_bytes()
            except OSError as e:
                raise ConnectionConfigError(f"{what} {path}: {e.strerror}") from None

        return TLSConfig(
            server_root_ca_cert=read(self.tls_ca, "TLS CA file"),
            client_cert=read(self.tls_cert, "TLS client certificate"),
            client_private_key=read(self.tls_key, "TLS client key"),
            domain=self.tls_server_name,
        )


class ConnectionConfigError(Exception):
    pass


async def connect(
    conn: Connection | str, namespace: str = "default", runtime: Runtime | None = None
) -> Client:
    if isinstance(conn, str):
        conn = Connection(address=conn, namespace=namespace)
    try:
        codec = load_codec(conn.codec_key_file)
    except CodecConfigError as e:
        raise ConnectionConfigError(str(e)) from None
    return await Client.connect(
        conn.address,
        namespace=conn.namespace,
        tls=conn.tls_config(),
        api_key=api_key(),
        data_converter=data_converter(codec),
        runtime=runtime,
    )


def api_key() -> str | None:
    """TEMPORAL_API_KEY, else the content of the file TEMPORAL_API_KEY_FILE names."""
    key = os.environ.get("TEMPORAL_API_KEY")
    path = os.environ.get("TEMPORAL_API_KEY_FILE")
    if key or not path:
        return key or None
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise ConnectionConfigError(
            f"TEMPORAL_API_KEY_FILE {path}: {getattr(e, 'strerror', None) or 'not text'}"
        ) from None
    if not text:
        raise ConnectionConfigError(f"TEMPORAL_API_KEY_FILE {path} is empty")
    return text


def metrics_runtime(bind: str, buckets: dict[str, list[float]] | None = None) -> Runtime:
    """A runtime whose metrics (the SDK's and amsm's) are served for Prometheus;
    `buckets`: a histogram's own bucket bounds, by name, where the SDK's do not fit."""
    host, _, port = bind.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConnectionConfigError(f"--metrics takes HOST:PORT, like 127.0.0.1:9464, not {bind!r}")
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(bind_address=bind, histogram_bucket_overrides=buckets)
        )
    )
