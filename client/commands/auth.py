"""`amsm auth init`: what a site's Temporal needs to let only amsm's programs and its
operators act (docs/site/production.md, "Lock-down"): a CA, the frontend's certificate,
a client certificate and a JWT per program (worker, console, Web UI, the set-up job) and
per engineer, the JWKS the server's JWT claim mapper reads, the server's configuration
and the Web UI's environment. Private keys and tokens 0600; nothing is ever overwritten;
never inside a Git work tree. Needs neither the server nor the inventory."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

from client.commands import auth_config, auth_pki
from client.commands.keys import in_git_work_tree
from client.session import EXIT_OK, EXIT_USAGE, CliError, emit

HINT = "docs/site/production.md#lock-down"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
HOST_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
# What signs (the CAs' keys, the JWT key): written to the signing folder (--signing-out),
# never into --out, whose files the containers mount.
SIGNING = "signing"
INTERNODE = "internode"
PROGRAMS = ("worker", "console", "ui", "admin")


def add(sub: Any) -> None:
    s = sub.add_parser("auth", help="a production site's certificates, tokens and Temporal config")
    verbs = s.add_subparsers(dest="verb", metavar="VERB")
    n = verbs.add_parser(
        "init",
        help="make the CA, certificates, keys, JWKS and tokens; render Temporal's config",
        description="Write into a new folder everything a site's Temporal needs to let only "
        "amsm's programs and its operators act: mutual TLS, the default authorizer with "
        f"the JWT claim mapper, roles per namespace, a read-only Web UI ({HINT}).",
    )
    n.add_argument("--site", required=True, metavar="NAME", help="the site, in every certificate")
    n.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="a folder that does not hold these files yet (default: "
        "$XDG_CONFIG_HOME/amsm/auth-SITE); never inside a Git work tree",
    )
    n.add_argument(
        "--signing-out",
        metavar="DIR",
        default=None,
        help="a folder for what signs (the CAs' keys, the JWT signing key), never inside "
        "--out: no container mounts it (default: OUT-signing, beside --out)",
    )
    n.add_argument(
        "--namespace",
        default="default",
        metavar="NS",
        help="the pair's Temporal namespace, which the roles name (default %(default)s)",
    )
    n.add_argument(
        "--server-name",
        action="append",
        default=[],
        metavar="HOST",
        help="a name or address operators reach the frontend by (repeat; "
        "`temporal`, localhost and 127.0.0.1 are always in)",
    )
    n.add_argument(
        "--engineer",
        action="append",
        default=[],
        metavar="NAME",
        help="an engineer who may only read: a certificate and a reader token (repeat)",
    )
    n.add_argument(
        "--ui-jwks-uri",
        metavar="URL",
        default=None,
        help="the JWKS of the identity provider the Web UI's users log in with: the server "
        'takes its tokens too (they must carry permissions ["NS:read"]); without it the '
        "Web UI shows nothing under the lock-down",
    )
    n.add_argument(
        "--days", type=int, default=825, help="how long certificates and tokens last (days)"
    )
    n.add_argument("--json", action="store_true")
    n.set_defaults(local=init)


def default_out(site: str) -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "amsm" / f"auth-{site}"


def fresh(path: Path, flag: str) -> None:
    """`path` holds no files and is outside any Git work tree, or an error saying so."""
    if path.is_dir() and any(path.iterdir()):
        raise CliError(
            f"{path} holds files already; amsm auth init never overwrites: "
            f"pass a new {flag} DIR ({HINT})"
        )
    here = next(p for p in path.absolute().parents if p.exists()) if not path.exists() else path
    if in_git_work_tree(here):
        raise CliError(
            f"{path} is inside a Git work tree: private keys never go in Git; "
            f"write them elsewhere ({flag} DIR, {HINT})",
            EXIT_USAGE,
        )


def signing_folder(args: argparse.Namespace, out: Path) -> Path:
    """Where what signs goes: --signing-out, or OUT-signing beside --out; never inside
    --out (whose files the containers mount) nor holding it."""
    base = out.absolute()
    if args.signing_out is None and not base.name:
        raise CliError(f"--out {out}: pass --signing-out DIR too ({HINT})", EXIT_USAGE)
    signing = Path(args.signing_out) if args.signing_out else base.with_name(f"{base.name}-signing")
    a, b = out.resolve(), signing.resolve()
    if a == b or a in b.parents or b in a.parents:
        raise CliError(
            f"--signing-out {signing} overlaps --out {out}: what signs (the CAs' keys, the "
            f"JWT signing key) stays out of the folder the containers mount; pass a folder "
            f"beside it ({HINT})",
            EXIT_USAGE,
        )
    return signing


def checked(args: argparse.Namespace) -> tuple[Path, Path, list[str]]:
    """The folder, the signing folder and the server names, or a usage error saying
    what is allowed."""
    for what, names in (("--site", [args.site]), ("--engineer", args.engineer)):
        for n in names:
            if not NAME_RE.fullmatch(n):
                raise CliError(f"{what} {n!r}: letters, digits, '.', '_' or '-'", EXIT_USAGE)
    for n in args.server_name:
        if not HOST_RE.fullmatch(n):
            raise CliError(f"--server-name {n!r} is not a host name or address", EXIT_USAGE)
    if not NAME_RE.fullmatch(args.namespace):
        raise CliError(f"--namespace {args.namespace!r} is not a namespace name", EXIT_USAGE)
    if args.ui_jwks_uri is not None:
        url = urlsplit(args.ui_jwks_uri)
        if url.scheme not in ("https", "http") or not url.hostname or " " in args.ui_jwks_uri:
            raise CliError(
                f"--ui-jwks-uri {args.ui_jwks_uri!r}: an http(s) URL of the identity "
                f"provider's JWKS, e.g. https://idp.example/realms/facility/protocol/"
                f"openid-connect/certs ({HINT})",
                EXIT_USAGE,
            )
    if not 1 <= args.days <= 3650:
        raise CliError(f"--days {args.days}: between 1 and 3650", EXIT_USAGE)
    out = Path(args.out) if args.out else default_out(args.site)
    signing = signing_folder(args, out)
    fresh(out, "--out")
    fresh(signing, "--signing-out")
    names = [auth_config.FRONTEND_NAME, "localhost", "127.0.0.1", *args.server_name]
    return out, signing, list(dict.fromkeys(names))


def contents(args: argparse.Namespace, server_names: list[str]) -> dict[str, bytes]:
    """Every file, by its path under the folder."""
    now = dt.datetime.now(dt.UTC)
    ca, ca_key = auth_pki.new_ca(args.site, now, args.days)
    files: dict[str, bytes] = {
        "ca.pem": ca.public_bytes(Encoding.PEM),
        f"{SIGNING}/ca-key.pem": auth_pki.pem_key(ca_key),
    }

    def leaf(name: str, servers: list[str] | None) -> None:
        got = auth_pki.issue(
            ca, ca_key, args.site, name, server_names=servers, now=now, days=args.days
        )
        files[f"{name}.pem"], files[f"{name}-key.pem"] = got.cert, got.key

    leaf("temporal", server_names)
    # The server's services among themselves (history, matching, the internal frontend):
    # a CA of their own. The internal frontend makes every caller whose certificate it
    # takes a system admin (temporalio/temporal, authorization.NewInternalClaimMapper),
    # and history and matching have no authorizer, so a client certificate of the
    # site's CA must never pass there (temporalio/samples-server tls/tls-full: one root
    # for internode, another for the frontend's clients).
    node_ca, node_key = auth_pki.new_ca(args.site, now, args.days, f"amsm {args.site} internode CA")
    files[f"{INTERNODE}-ca.pem"] = node_ca.public_bytes(Encoding.PEM)
    files[f"{SIGNING}/{INTERNODE}-ca-key.pem"] = auth_pki.pem_key(node_key)
    node = auth_pki.issue(
        node_ca,
        node_key,
        args.site,
        INTERNODE,
        server_names=[auth_config.INTERNODE_NAME],
        now=now,
        days=args.days,
    )
    files[f"{INTERNODE}.pem"], files[f"{INTERNODE}-key.pem"] = node.cert, node.key
    jwt_key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    files[f"{SIGNING}/jwt-key.pem"] = auth_pki.pem_key(jwt_key)
    files["jwks.json"] = json.dumps(auth_pki.jwks(jwt_key.public_key()), indent=2).encode()
    people = [(p, p) for p in PROGRAMS] + [(f"engineer-{e}", "engineer") for e in args.engineer]
    for name, role in people:
        leaf(name, None)
        if name != "ui":  # the Web UI forwards its users' own tokens (docs: Lock-down)
            grant = auth_config.permissions(role, args.namespace)
            tok = auth_pki.token(jwt_key, name, grant, now, args.days)
            files[f"{name}.jwt"] = tok.encode()
    files["temporal-server.yaml"] = auth_config.server_yaml(args.ui_jwks_uri).encode()
    files["temporal-ui.env"] = auth_config.ui_env(args.namespace, args.ui_jwks_uri).encode()
    return files


def secret(path: str) -> bool:
    return path.endswith(("-key.pem", ".jwt"))


def place(out: Path, signing: Path, rel: str) -> Path:
    """Where a file goes: what signs in the signing folder, the rest in --out."""
    if rel.startswith(f"{SIGNING}/"):
        return signing / rel.removeprefix(f"{SIGNING}/")
    return out / rel


def write(out: Path, signing: Path, files: dict[str, bytes]) -> None:
    taken = [str(place(out, signing, p)) for p in files if place(out, signing, p).exists()]
    if taken:
        raise CliError(
            f"{', '.join(sorted(taken))} exist already; amsm auth init never "
            f"overwrites: pass a new --out DIR and --signing-out DIR ({HINT})"
        )
    out.mkdir(parents=True, exist_ok=True)
    signing.mkdir(parents=True, exist_ok=True, mode=0o700)
    for rel, data in files.items():
        # O_EXCL: never over a file made meanwhile; keys and tokens 0600 from the first byte.
        fd = os.open(
            place(out, signing, rel),
            os.O_WRONLY | os.O_CREAT | os.O_EXCL,
            0o600 if secret(rel) else 0o644,
        )
        with os.fdopen(fd, "wb") as f:
            f.write(data)


async def init(args: argparse.Namespace) -> int:
    out, signing, names = checked(args)
    files = contents(args, names)
    write(out, signing, files)
    mounted = sorted(p for p in files if not p.startswith(f"{SIGNING}/"))
    signs = sorted(p.removeprefix(f"{SIGNING}/") for p in files if p.startswith(f"{SIGNING}/"))
    emit(
        args,
        {
            "out": str(out),
            "namespace": args.namespace,
            "files": mounted,
            "signing_out": str(signing),
            "signing_files": signs,
        },
        "\n".join([f"  {out / p}" for p in mounted] + [f"  {signing / p}" for p in signs]),
    )
    if not args.json:
        print(
            f"written to {out}, and what signs to {signing}: move {signing} off this "
            f"machine once the site runs; docker-compose.yml mounts each container's own "
            f"files from {out} (AMSM_AUTH={out}; {HINT})",
            file=sys.stderr,
        )
    return EXIT_OK
