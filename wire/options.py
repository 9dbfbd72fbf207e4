"""The command line that every program reaching a pair's Temporal shares (the `amsm` CLI,
the worker, the codec server): the inventory, the Temporal frontend, TLS and the payload
key, each with its environment variable."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from inventory.load import InventoryError, load_inventory
from inventory.models import Inventory
from wire.connection import Connection

DEFAULT_INVENTORY = "var/lab/inventory.yaml"


class BadInventory(Exception):
    """The inventory is missing or cannot be used: one message, a usage error."""


def add_options(p: argparse.ArgumentParser) -> None:
    env = os.environ.get
    p.add_argument("--inventory", help="inventory YAML (env AMSM_INVENTORY; default %(default)s)")
    p.add_argument(
        "--address",
        default=env("TEMPORAL_ADDRESS", "localhost:7233"),
        help="Temporal frontend (env TEMPORAL_ADDRESS; default %(default)s)",
    )
    p.add_argument("--namespace", default=env("TEMPORAL_NAMESPACE", "default"))
    t = p.add_argument_group(
        "connection security (the API key is read from TEMPORAL_API_KEY or the file TEMPORAL_API_KEY_FILE names)"
    )
    t.add_argument("--tls", action="store_true", default=bool(env("TEMPORAL_TLS")), help="use TLS")
    t.add_argument("--tls-ca", default=env("TEMPORAL_TLS_CA"), metavar="FILE", help="server CA")
    t.add_argument(
        "--tls-cert", default=env("TEMPORAL_TLS_CERT"), metavar="FILE", help="client cert (mTLS)"
    )
    t.add_argument(
        "--tls-key", default=env("TEMPORAL_TLS_KEY"), metavar="FILE", help="client key (mTLS)"
    )
    t.add_argument("--tls-server-name", default=env("TEMPORAL_TLS_SERVER_NAME"), metavar="NAME")
    t.add_argument(
        "--codec-key-file",
        default=env("AMSM_CODEC_KEY_FILE"),
        metavar="FILE",
        help="encrypt payloads (AES-GCM; KEY_ID:BASE64 lines, first is current)",
    )


def connection(args: argparse.Namespace) -> Connection:
    return Connection(
        address=args.address,
        namespace=args.namespace,
        tls=args.tls,
        tls_ca=args.tls_ca,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_server_name=args.tls_server_name,
        codec_key_file=args.codec_key_file,
    )


def inventory_path(args: argparse.Namespace) -> str:
    return args.inventory or os.environ.get("AMSM_INVENTORY") or DEFAULT_INVENTORY


def inventory(args: argparse.Namespace) -> Inventory:
    """The inventory the options name; BadInventory explains every problem."""
    path = inventory_path(args)
    if not Path(path).exists():
        raise BadInventory(
            f"no inventory at {path}: pass --inventory FILE or set AMSM_INVENTORY "
            "(the embedded default, `make run`, creates var/lab/inventory.yaml)"
        )
    try:
        return load_inventory(path)
    except InventoryError as e:
        raise BadInventory(e.explain()) from None
