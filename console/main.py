"""`amsm console`: serve the operator console (a program of its own, like `amsm worker`;
the CLI never imports it).

    amsm console [--listen HOST:PORT] [--inventory FILE ...] [--address HOST:PORT]
                 [--accounts FILE] [--cert FILE --key FILE] [--session-key-file FILE]
                 [--trusted-proxy ADDR[,NET...] [--proxy-user-header NAME]]
                 [--console-key-file FILE] [--allowed-host NAME ...]
    amsm console hash-password      # an Argon2id hash for the accounts file

Exit status: 0 stopped, 1 could not serve (Temporal unreachable, a port in use),
2 bad usage (a bad inventory, accounts file or option)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import re
import secrets
import stat
import sys
from pathlib import Path

import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api.act import read_key
from api.refusal import EXIT_FAIL, EXIT_OK, Refused
from api.runs import connect
from console.accounts import AccountsError, hash_password
from console.app import build_app
from console.auth import Gate, ProxyTrust, parse_networks
from console.directory import DirectoryError, directory_of
from console.holding import hold_options
from console.pairs import Hub
from console.sessions import Sessions
from console.site import Site
from inventory import intent
from inventory.models import Inventory
from wire.codec import CodecConfigError, load_codec
from wire.options import BadInventory, add_options, connection, inventory, inventory_path

DEFAULT_LISTEN = "127.0.0.1:8080"
HOST_NAME_RE = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")
ACCOUNTS_NEXT_TO_INVENTORY = Path("secrets") / "console-accounts.yaml"
SESSION_KEY_BESIDE_ACCOUNTS = "console-session-key"
SESSION_KEY_MIN = 32


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="amsm console",
        description="Serve the operator console: the pair's window in a browser, through "
        "Temporal only. Repeat --inventory for several pairs.",
    )
    add_options(p)
    p.add_argument(
        "--listen",
        default=os.environ.get("AMSM_CONSOLE_LISTEN", DEFAULT_LISTEN),
        metavar="HOST:PORT",
        help="where to serve (env AMSM_CONSOLE_LISTEN; default %(default)s)",
    )
    p.add_argument(
        "--accounts",
        default=os.environ.get("AMSM_CONSOLE_ACCOUNTS"),
        metavar="FILE",
        help="the accounts file (env AMSM_CONSOLE_ACCOUNTS; default: secrets/"
        "console-accounts.yaml beside the first inventory, as `amsm lab init` writes it)",
    )
    p.add_argument("--cert", metavar="FILE", help="serve HTTPS with this certificate (PEM)")
    p.add_argument("--key", metavar="FILE", help="the certificate's private key (PEM)")
    p.add_argument(
        "--proxy-user-header",
        metavar="NAME",
        help="take the user from this header set by a trusted front proxy (needs --trusted-proxy)",
    )
    p.add_argument(
        "--trusted-proxy",
        metavar="ADDR[,NET...]",
        help="the front proxies' addresses: their X-Forwarded-For (for the login throttle) "
        "and --proxy-user-header are believed",
    )
    p.add_argument(
        "--session-key-file",
        metavar="FILE",
        help="the key that signs session cookies, 32 characters or more (default: "
        "console-session-key beside the accounts file, made at the first start, mode 0600; "
        "a restart keeps everyone logged in)",
    )
    p.add_argument(
        "--console-key-file",
        default=os.environ.get("AMSM_CONSOLE_KEY_FILE"),
        metavar="FILE",
        help="the console's own Ed25519 private key (`amsm keys new --operator console --out "
        "FILE`; env AMSM_CONSOLE_KEY_FILE): it signs each act for the person logged in, on "
        "the pairs whose inventory names its public key as console_key",
    )
    p.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name the console answers to (repeatable; its addresses and localhost "
        "always): a request naming another host is refused, so a rebound DNS name cannot "
        "drive it (docs/operators/console.md)",
    )
    p.add_argument("command", nargs="?", choices=["hash-password"], help=argparse.SUPPRESS)
    return p


def split_inventories(argv: list[str]) -> tuple[list[str], list[str]]:
    """Every `--inventory FILE` (repeatable here), and the rest of the command line."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--inventory", action="append", default=[])
    ns, rest = pre.parse_known_args(argv)
    return list(ns.inventory), rest


def listen_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise Refused(f"--listen {text!r}: HOST:PORT, e.g. {DEFAULT_LISTEN}", "usage")
    return host.strip("[]"), int(port)


def load_inventories(args: argparse.Namespace, paths: list[str]) -> list[Inventory]:
    invs: list[Inventory] = []
    for path in paths or [None]:  # type: ignore[list-item]
        args.inventory = path
        try:
            inv = inventory(args)
        except BadInventory as e:
            raise Refused(str(e), "usage") from None
        if any(i.pair == inv.pair for i in invs):
            raise Refused(f"--inventory {path}: pair {inv.pair} is given twice", "usage")
        invs.append(inv)
    return invs


def accounts_path(args: argparse.Namespace, first_inventory: str | None) -> str:
    if args.accounts:
        return str(args.accounts)
    args.inventory = first_inventory
    return str(Path(inventory_path(args)).parent / ACCOUNTS_NEXT_TO_INVENTORY)


def proxy_of(args: argparse.Namespace) -> ProxyTrust | None:
    if args.proxy_user_header and not args.trusted_proxy:
        raise Refused(
            "--proxy-user-header needs --trusted-proxy (the header is believed only from "
            "the proxy's addresses)",
            "usage",
        )
    if not args.trusted_proxy:
        return None
    try:
        return ProxyTrust(args.proxy_user_header or None, parse_networks(args.trusted_proxy))
    except ValueError as e:
        raise Refused(f"--trusted-proxy: {e}", "usage") from None


def session_key(args: argparse.Namespace, accounts: str) -> str:
    """The key that signs session cookies: --session-key-file's, or the one kept beside
    the accounts file (made at the first start), so a restart logs nobody out."""
    if not args.session_key_file:
        return kept_session_key(Path(accounts).parent / SESSION_KEY_BESIDE_ACCOUNTS)
    try:
        key = Path(args.session_key_file).read_text(encoding="utf-8").strip()
    except OSError as e:
        raise Refused(f"--session-key-file: cannot read it ({e.strerror or e})", "usage") from None
    if len(key) < SESSION_KEY_MIN:
        raise Refused("--session-key-file: the key must be 32 characters or more", "usage")
    return key


def kept_session_key(path: Path) -> str:
    """The key in `path`; made there first (random, mode 0600, complete when it appears:
    written to a file of its own, then linked in place) when there is none. Refused when
    it is unreadable, shorter than 32 characters or readable by group or others."""
    where = f"session key file {path}"
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(secrets.token_urlsafe(32) + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.link(tmp, path)  # fails if another console made it first: read that one
        finally:
            tmp.unlink(missing_ok=True)
    except FileExistsError:
        pass
    except OSError as e:
        raise Refused(
            f"{where}: cannot create it ({e.strerror or e}); let the console write to "
            f"{path.parent} or pass --session-key-file FILE",
            "usage",
        ) from None
    try:
        st = path.stat()
        key = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else "not UTF-8 text"
        raise Refused(
            f"{where}: cannot read it ({reason}); fix it, or delete it to have a new key "
            "made (everyone logs in again)",
            "usage",
        ) from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise Refused(
            f"{where}: readable by others (mode {stat.S_IMODE(st.st_mode):o}); chmod 600 {path}",
            "usage",
        )
    if len(key) < SESSION_KEY_MIN:
        raise Refused(
            f"{where}: the key is {len(key)} characters, 32 or more are needed; delete the "
            "file to have a new key made (everyone logs in again)",
            "usage",
        )
    return key


def console_key(args: argparse.Namespace, invs: list[Inventory]) -> Ed25519PrivateKey | None:
    """The console's signing key (--console-key-file), refused when a pair's inventory
    names another console_key; a line for each pair where the console's acts go unsigned
    (docs/operators/signed-acts.md#the-console)."""
    key = read_key(args.console_key_file, "--console-key-file") if args.console_key_file else None
    line = intent.public_line(key.public_key()) if key is not None else None
    for inv in invs:
        if key is not None and inv.console_key not in (None, line):
            raise Refused(
                f"--console-key-file {args.console_key_file}: its public key {line} is not "
                f"pair {inv.pair}'s console_key ({inv.console_key}); give the key the "
                "inventory names, or list this one (docs/operators/signed-acts.md)",
                "usage",
            )
        if key is not None and inv.console_key is None:
            print(
                f"amsm console: pair {inv.pair} names no console_key: acts there go unsigned; "
                f'add console_key: "{line}" to its inventory',
                file=sys.stderr,
            )
        elif key is None and inv.console_key is not None:
            refused = (
                " and refused (identity.require_signed)" if inv.identity.require_signed else ""
            )
            print(
                f"amsm console: pair {inv.pair} names a console_key but no "
                f"--console-key-file was given: acts there go unsigned{refused}",
                file=sys.stderr,
            )
    return key


async def serve(args: argparse.Namespace, invs: list[Inventory], paths: list[str]) -> int:
    host, port = listen_address(args.listen)
    if bool(args.cert) != bool(args.key):
        raise Refused("--cert and --key go together (HTTPS)", "usage")
    try:
        accounts = accounts_path(args, paths[0] if paths else None)
        directory = directory_of(invs, paths or [inventory_path(args)])
        gate = Gate(accounts, proxy_of(args), directory)
        codec = load_codec(args.codec_key_file)
    except (AccountsError, OSError, DirectoryError) as e:
        raise Refused(str(e), "usage") from None
    except CodecConfigError as e:
        raise Refused(str(e), "usage") from None
    key = session_key(args, accounts)  # before connecting: a bad key file is a usage error
    signing = console_key(args, invs)
    temporal = await connect(connection(args))
    hub = Hub(temporal, invs)
    # This console's sessions, its own file (another console on the host has another).
    gate.sessions = Sessions(Path(accounts).parent / f"console-sessions-{port}.json")
    app = build_app(
        Site(hub, gate, codec, signing),
        key,
        tls=bool(args.cert),
        port=port,
        allowed_hosts=allowed_hosts(args.allowed_host),
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        ssl_certfile=args.cert,
        ssl_keyfile=args.key,
        timeout_graceful_shutdown=2,
        proxy_headers=False,  # the peer address is the proxy's: --trusted-proxy checks it
        **hold_options(),
    )
    server = uvicorn.Server(config)
    scheme = "https" if args.cert else "http"
    print(
        f"amsm console: serving {', '.join(i.pair for i in invs)} on {scheme}://{host}:{port} "
        f"(accounts {gate.accounts_path})",
        flush=True,
    )
    await server.serve()
    return EXIT_OK if server.started else EXIT_FAIL


def allowed_hosts(names: list[str]) -> frozenset[str]:
    out = set()
    for name in names:
        for part in (p.strip().lower().rstrip(".") for p in name.split(",")):
            if not part or not HOST_NAME_RE.fullmatch(part):
                raise Refused(
                    f"--allowed-host {name!r}: a host name (letters, digits, - and .), "
                    "e.g. amsm.facility.example",
                    "usage",
                )
            out.add(part)
    return frozenset(out)


def main(argv: list[str]) -> int:
    paths, rest = split_inventories(argv)
    args = parser().parse_args(rest)
    try:
        if args.command == "hash-password":
            return print_hash()
        invs = load_inventories(args, paths)
        return asyncio.run(serve(args, invs, paths))
    except Refused as e:
        print(f"amsm console: {e}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        return EXIT_OK


def print_hash() -> int:
    """An Argon2id hash of a password typed twice (or one line on stdin), for the file."""
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if first != getpass.getpass("again: "):
            raise Refused("the two passwords differ", "usage")
    else:
        first = sys.stdin.readline().rstrip("\n")
    if len(first) < 12:
        raise Refused("a console password needs 12 characters or more", "usage")
    print(hash_password(first))
    return EXIT_OK
