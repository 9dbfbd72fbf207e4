"""amsm: start, watch and signal the pair's workflows. Talks to Temporal only."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable
from typing import Any

from client.history_args import HISTORY_COMMANDS, add_history_commands, needs_server
from client.session import EXIT_OK, EXIT_USAGE, CliError, default_operator, inventory_path, load
from workflows.kinds import KINDS, OTHER_KINDS


def _switch_options(k: argparse.ArgumentParser) -> None:
    k.add_argument(
        "--unplanned",
        action="store_true",
        help="the main side is lost (down or unreachable): switch without it (needs --reason)",
    )
    k.add_argument("--reason", help="why the switch is unplanned (recorded)")


def _split_switch_options(k: argparse.ArgumentParser) -> None:
    k.add_argument(
        "--pilot", action="append", required=True, metavar="HOST", help="a pilot client (repeat)"
    )


def _restore_options(k: argparse.ArgumentParser) -> None:
    k.add_argument(
        "--tolerance", type=int, default=0, help="asset counts may differ by this much (default 0)"
    )


# What `amsm start KIND` takes besides its side (workflows/kinds.py has the rest).
START_OPTIONS: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "switch": _switch_options,
    "split-switch": _split_switch_options,
    "restore": _restore_options,
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="amsm",
        description="Aurora Mirrored System Manager: switch, split and restore a mirrored K2 pair.",
    )
    p.add_argument("--inventory", help="inventory YAML (env AMSM_INVENTORY; default %(default)s)")
    p.add_argument(
        "--address",
        default=os.environ.get("TEMPORAL_ADDRESS", "localhost:7233"),
        help="Temporal frontend (env TEMPORAL_ADDRESS; default %(default)s)",
    )
    p.add_argument("--namespace", default=os.environ.get("TEMPORAL_NAMESPACE", "default"))
    env = os.environ.get
    t = p.add_argument_group("connection security (the API key is read from TEMPORAL_API_KEY)")
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
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("status", help="show the pair like the manual's console")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.add_argument("--watch", action="store_true", help="refresh in place until Ctrl-C")
    s.add_argument("--interval", type=float, default=5.0, help="seconds between reads (--watch)")
    s.add_argument(
        "--cached",
        action="store_true",
        help="what the pair's watch last read (a query; what viewers always get)",
    )

    s = sub.add_parser("start", help="start a workflow on the pair")
    kinds = s.add_subparsers(dest="kind", metavar="WORKFLOW")
    side = {"type": str.upper, "choices": ["X", "Y"]}
    for kind in KINDS.values():
        k = kinds.add_parser(kind.name, help=kind.help)
        k.add_argument(f"--{kind.side}", required=True, help=kind.side_help, **side)  # type: ignore[arg-type]
        START_OPTIONS.get(kind.name, lambda _: None)(k)
    for k in kinds.choices.values():
        k.add_argument("--operator", default=default_operator())
        k.add_argument("--json", action="store_true")
        k.add_argument(
            "--no-wait", action="store_true", help="do not wait for the precondition check"
        )

    s = sub.add_parser("runs", help="list the pair's runs (newest first)")
    s.add_argument("--kind", choices=[*KINDS, *OTHER_KINDS])
    s.add_argument(
        "--state", choices=["running", "awaiting-operator", "completed", "aborted", "failed"]
    )
    s.add_argument("--operator", help="who started them")
    s.add_argument("--limit", type=int, default=20)
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("watch", help="follow a run's checklist live")
    s.add_argument("run", metavar="RUN", nargs="?", default="current")
    s.add_argument(
        "--follow", action="store_true", help="keep going when the run waits for the operator"
    )
    s.add_argument("--interval", type=float, default=1.0)

    s = sub.add_parser("show", help="show a run's checklist")
    s.add_argument("run", metavar="RUN", help="run id (or a unique prefix, or 'current')")
    s.add_argument("--json", action="store_true")

    for verb, what in (("confirm", "tick a manual step"), ("approve", "pass a gate")):
        s = sub.add_parser(verb, help=what)
        s.add_argument("run", metavar="RUN")
        s.add_argument("step", metavar="STEP")
        s.add_argument("--note", default=None)
        s.add_argument("--operator", default=default_operator())
        s.add_argument("--json", action="store_true")
        if verb == "confirm":
            s.add_argument(
                "--client",
                action="append",
                metavar="HOST",
                help="for move-editors: a client to move to the other side (repeat)",
            )

    for verb, what in (
        ("retry", "try a failed step again (for switch-clients: only the failed clients)"),
        ("skip", "leave a failed or waiting step (or one client) behind, with a reason"),
    ):
        s = sub.add_parser(verb, help=what)
        s.add_argument("run", metavar="RUN")
        s.add_argument("step", metavar="STEP")
        s.add_argument("--client", metavar="HOST", help="only this client of the step")
        s.add_argument("--reason", required=(verb == "skip"), default=None)
        s.add_argument("--operator", default=default_operator())
        s.add_argument("--json", action="store_true")
    s = sub.add_parser(
        "fence", help="the fence an unplanned switch left on the lost side: show or end it"
    )
    s.set_defaults(fence_action=None)
    s.add_argument("--json", action="store_true")
    f = s.add_subparsers(dest="fence_action", metavar="ACTION")
    e = f.add_parser("end", help="end the fence by hand (the lost side stays as it is)")
    e.add_argument("--reason", required=True)
    e.add_argument("--operator", default=default_operator())
    e.add_argument("--json", action="store_true")
    s = sub.add_parser("abort", help="stop the run at the next safe point, with a reason")
    s.add_argument("run", metavar="RUN")
    s.add_argument("--reason", required=True)
    s.add_argument("--operator", default=default_operator())
    s.add_argument("--json", action="store_true")

    add_controls(sub)
    add_history_commands(sub)

    s = sub.add_parser(
        "rules", help="every interlock: what it protects, whether it can be overridden"
    )
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("inventory", help="inventory tools")
    inv = s.add_subparsers(dest="inv_command", metavar="ACTION")
    c = inv.add_parser("check", help="validate an inventory file and explain every problem")
    c.add_argument("file", metavar="FILE")

    s = sub.add_parser("worker", help="run a worker for the inventory's pair")
    s.add_argument(
        "--log-format",
        choices=["text", "json"],
        default=os.environ.get("AMSM_LOG_FORMAT") or "text",
        help="json: one object per line with run id, step and host (env AMSM_LOG_FORMAT)",
    )
    s.add_argument(
        "--site",
        choices=["X", "Y"],
        type=str.upper,
        default=None,
        help="serve only the activities of side X's (or Y's) devices, plus the pair's "
        "workflows: one worker per site, inside its network (default: both sides)",
    )
    s.add_argument(
        "--metrics",
        default=os.environ.get("AMSM_METRICS") or None,
        metavar="HOST:PORT",
        help="serve Prometheus metrics on http://HOST:PORT/metrics (env AMSM_METRICS)",
    )

    s = sub.add_parser(
        "codec-server", help="decrypt payloads for the Temporal Web UI (needs --codec-key-file)"
    )
    s.add_argument("--bind", default="127.0.0.1", help="address to listen on (default %(default)s)")
    s.add_argument("--port", type=int, default=8081)
    s.add_argument(
        "--ui-origin",
        action="append",
        default=None,
        help="Web UI origin allowed by CORS (default http://localhost:8233; repeat for more)",
    )
    s.add_argument(
        "--token-file",
        default=None,
        metavar="FILE",
        help="the token every request must carry (env AMSM_CODEC_TOKEN_FILE or "
        "AMSM_CODEC_TOKEN; default: a random one for this run, printed once)",
    )
    s.add_argument(
        "--allow-host",
        action="append",
        default=None,
        metavar="NAME",
        help="a Host name the server answers to besides localhost, 127.0.0.1, ::1 and "
        "--bind (repeat for more); any other Host is refused (DNS rebinding)",
    )
    s.add_argument(
        "--max-body",
        type=int,
        default=None,
        metavar="BYTES",
        help="largest request body accepted (default 8 MiB)",
    )

    s = sub.add_parser("lab", help="the simulated pair")
    lab = s.add_subparsers(dest="lab_command", metavar="ACTION")
    c = lab.add_parser("init", help="create a lab: inventory, keys, devices (mirrored, X main)")
    c.add_argument("--dir", required=True)
    c.add_argument("--editors", type=int, default=2)
    c.add_argument("--ingest", type=int, default=1)
    c.add_argument("--smartbins", type=int, default=1, help="SmartBins servers per side")
    c.add_argument("--reboot-seconds", type=float, default=5.0)
    c.add_argument("--force", action="store_true", help="overwrite an existing lab")
    c = lab.add_parser("serve", help="serve the lab's devices (SSH per host, DSM files)")
    c.add_argument("--dir", required=True)
    c = lab.add_parser(
        "fault",
        help="set or clear a fault on a lab host or DSM, or take a whole side down",
        usage="amsm lab fault HOST|DSM KIND [SECONDS] --dir DIR\n"
        "       amsm lab fault --side X|Y down|up --dir DIR",
    )
    c.add_argument(
        "target",
        metavar="HOST|DSM",
        help="the host or DSM; with --side, the side fault: down or up",
    )
    c.add_argument(
        "kind",
        nargs="?",
        choices=[
            "unreachable",
            "no-reboot",
            "slow-reboot",
            "flapping",
            "clock-step",
            "replication-fails",
            "clear",
        ],
    )
    c.add_argument(
        "--side",
        type=str.upper,
        choices=["X", "Y"],
        help="the whole side: its DSM, SmartBins, NAS heads and bridge (down|up)",
    )
    c.add_argument(
        "seconds",
        type=float,
        nargs="?",
        help="slow-reboot: how long a restart takes; flapping: how long each boot lasts; "
        "clock-step: how far the host's clock jumps (negative: back)",
    )
    c.add_argument("--dir", required=True)
    c = lab.add_parser("ingest", help="record a clip on one side (files on V:, an asset)")
    c.add_argument("--side", required=True, type=str.upper, choices=["X", "Y"])
    c.add_argument("--clip", required=True)
    c.add_argument("--bin", default="News", help="the SmartBin (default %(default)s)")
    c.add_argument("--dir", required=True)
    c = lab.add_parser("link", help="make a junction (or symbolic link) on a side's V:")
    c.add_argument("--side", required=True, type=str.upper, choices=["X", "Y"])
    c.add_argument("path", help="where the link is, e.g. V:\\VibrantAVIFiles\\News\\a.vmf\\j")
    c.add_argument("target", help="the folder it points at, on the same V:")
    c.add_argument("--kind", choices=["Junction", "SymbolicLink"], default="Junction")
    c.add_argument("--dir", required=True)
    for tool in ("insync", "allsync"):
        c = lab.add_parser(tool, help=f"the operator's hands: start or stop {tool} in the lab")
        c.add_argument("action", choices=["start", "stop"])
        c.add_argument("--dir", required=True)
        if tool == "allsync":
            c.add_argument("--side", required=True, type=str.upper, choices=["X", "Y"])
    return p


CONTROL_GROUPS = ("dsm", "replication", "smartbins", "browse", "clients", "insync", "allsync")
SIDE_ARG = {"type": str.upper, "choices": ["X", "Y"], "metavar": "SIDE"}


def add_controls(sub: Any) -> None:
    """The console's Status and Control buttons: each runs a short durable workflow."""

    def control(parent: Any, name: str, help: str, control: str, side: str = "") -> Any:
        p = parent.add_parser(name, help=help)
        p.set_defaults(control=control, side=None, hosts=[])
        if side == "positional":
            p.add_argument("side", **SIDE_ARG)
        elif side == "to":
            p.add_argument("--to", dest="side", required=True, **SIDE_ARG)
        p.add_argument("--operator", default=default_operator())
        p.add_argument("--json", action="store_true")
        p.add_argument(
            "--override",
            dest="overrides",
            action="append",
            default=[],
            metavar="RULE",
            help="break-glass: force this rule (repeat; `amsm rules` lists those allowed)",
        )
        p.add_argument("--reason", metavar="TEXT", help="why the rules are forced (required)")
        return p

    g = sub.add_parser("dsm", help="DSM: set main / set backup").add_subparsers(dest="action")
    control(g, "set-main", "set SIDE's DSM to main", "dsm-set-main", "positional")
    control(g, "set-backup", "set SIDE's DSM to backup", "dsm-set-backup", "positional")
    g = sub.add_parser("replication", help="start / stop replication").add_subparsers(dest="action")
    control(
        g, "start", "start replication from SIDE's (main) DSM", "replication-start", "positional"
    )
    control(g, "stop", "stop replication on SIDE's DSM", "replication-stop", "positional")
    g = sub.add_parser("smartbins", help="SmartBins main / backup").add_subparsers(dest="action")
    control(
        g,
        "set-main",
        "every SmartBins server of SIDE in normal mode",
        "smartbins-set-main",
        "positional",
    )
    control(
        g,
        "set-backup",
        "SIDE's SmartBins to backup (pseudo host)",
        "smartbins-set-backup",
        "positional",
    )
    g = sub.add_parser("browse", help="stop / start / switch Browse components").add_subparsers(
        dest="action"
    )
    for verb in ("stop", "start"):
        p = control(g, verb, f"{verb} Browse components (all, or those on HOSTs)", f"browse-{verb}")
        p.add_argument("hosts", nargs="*", metavar="HOST")
    p = control(g, "switch", "switch stopped Browse components to a side", "browse-switch", "to")
    p.add_argument("hosts", nargs="*", metavar="HOST")
    g = sub.add_parser("clients", help="switch clients").add_subparsers(dest="action")
    p = control(g, "switch", "switch these clients to a side, in parallel", "clients-switch", "to")
    p.add_argument("hosts", nargs="+", metavar="HOST")
    g = sub.add_parser("insync", help="InSync direction, start / stop").add_subparsers(
        dest="action"
    )
    control(
        g,
        "set-main",
        "InSync copies from SIDE (InSync must be stopped)",
        "insync-set-main",
        "positional",
    )
    control(g, "start", "start InSync (needs devices.insync_service)", "insync-start")
    control(g, "stop", "stop InSync (needs devices.insync_service)", "insync-stop")
    g = sub.add_parser("allsync", help="start / stop AllSync").add_subparsers(dest="action")
    control(g, "start", "start AllSync on SIDE's CIFS NAS head", "allsync-start", "positional")
    control(g, "stop", "stop AllSync on SIDE's CIFS NAS head", "allsync-stop", "positional")
    p = control(sub, "reboot", "force a reboot and wait until the host is back", "reboot")
    p.add_argument("hosts", nargs="+", metavar="HOST")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    try:
        return dispatch(parser, args)
    except CliError as e:
        print(f"amsm: {e}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        return 130


def dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from client import commands

    if args.command == "inventory":
        if args.inv_command != "check":
            parser.parse_args(["inventory", "--help"])
        return commands.inventory_check(args.file)
    if args.command == "lab":
        return commands.lab(args)
    if args.command == "codec-server":
        return codec_server(args)
    if args.command == "rules":
        from client.rules import rules_command

        return rules_command(args)
    if args.command == "worker":
        from workers.worker import main as worker_main

        path = inventory_path(args)
        load(args)  # explain a bad inventory before connecting
        from client.runs import connection

        return worker_main(
            path,
            connection(args),
            log_format=args.log_format,
            metrics=args.metrics,
            site=args.site,
        )
    if args.command == "start" and not args.kind:
        parser.parse_args(["start", "--help"])
    if args.command in CONTROL_GROUPS and not getattr(args, "control", None):
        parser.parse_args([args.command, "--help"])
    if getattr(args, "control", None):
        from client.rules import control_overrides

        control_overrides(args)  # a bad override is refused before anything connects
    if args.command in HISTORY_COMMANDS and not needs_server(args):
        from client.history_cli import run_history_command

        return asyncio.run(run_history_command(None, None, args))
    inv = load(args)
    return asyncio.run(commands.run_temporal_command(args, inv))


def codec_server(args: argparse.Namespace) -> int:
    from wire.codec import CodecConfigError, load_codec
    from workers.codec_server import (
        DEFAULT_MAX_BODY,
        TokenError,
        allowed_host_names,
        load_token,
        serve,
    )

    try:
        codec = load_codec(args.codec_key_file)
    except CodecConfigError as e:
        raise CliError(str(e), EXIT_USAGE) from None
    if codec is None:
        raise CliError(
            "no key: pass --codec-key-file FILE or set AMSM_CODEC_KEY_FILE / AMSM_CODEC_KEY",
            EXIT_USAGE,
        )
    origins = args.ui_origin or ["http://localhost:8233"]
    try:
        token, generated = load_token(args.token_file)
    except TokenError as e:
        raise CliError(str(e), EXIT_USAGE) from None
    if args.max_body is not None and args.max_body < 1024:
        raise CliError("--max-body: at least 1024 bytes", EXIT_USAGE)
    hosts = allowed_host_names(args.bind, args.allow_host or [])
    try:
        server = serve(
            codec.reader(),  # shows plaintext payloads as they are; a worker refuses them
            args.bind,
            args.port,
            origins,
            token=token,
            allowed_hosts=hosts,
            max_body=args.max_body or DEFAULT_MAX_BODY,
        )
    except OSError as e:
        raise CliError(f"cannot listen on {args.bind}:{args.port}: {e.strerror}") from None
    if args.bind not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {args.bind}: whoever has the token can decrypt payloads")
    base = f"http://{args.bind}:{args.port}"
    shown = token if generated else "TOKEN"
    print(
        f"codec server on {base} (current key {codec.current}). Web UI codec endpoint: "
        f"{base}/{shown}/ ; temporal CLI: --codec-endpoint {base} --codec-auth "
        f"'Bearer {shown}'. Allowed origins: {', '.join(origins)}; hosts: {', '.join(hosts)}"
        + ("; the token was generated for this run" if generated else ""),
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def entry() -> None:
    """Console script. Exits without interpreter finalisation: the Temporal SDK's
    native runtime threads can abort a finalising interpreter (PyGILState_Release)."""
    try:
        rc = main()
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # `amsm status | head`
        rc = 0
    os._exit(rc)


if __name__ == "__main__":
    entry()
