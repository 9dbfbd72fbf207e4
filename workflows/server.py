"""What amsm needs of the Temporal server: its dynamic config limits and the search
attributes. One home for the values: `dev_server_flags()` is what every dev server amsm
starts takes (`make run`, the tests, the benchmark), `dynamic_config_yaml()` the file
docker-compose.yml mounts (`dynamicconfig/amsm.yaml`, checked against this module by
tests/unit/test_server_limits.py), and docs/reference/limits.md states them for a facility's own
cluster.

No workflow code can refuse a signal: the server stores every signal it accepts before
a worker sees it, so what one run can be sent is bounded here, on the server:

    signals one run accepts x the biggest one  +  the run's own history  <  history limit
        MAX_SIGNALS (8)     x  4 MiB            +  12 MiB                =  44 MiB < 50 MiB

The biggest signal is the frontend's gRPC message limit (4 MiB, fixed in the server), not
`limit.blobSize.error`: the server checks the blob limit against a signal's input only,
and stores its header and its identity, which it does not limit, with it (a signal with
a 3 MB header was accepted and stored by the dev server with the blob limit at 256 KiB).
The run's own history is at most CONTINUE_AFTER_BYTES (10 MiB, workflows/limits.py) at a
point where it could continue as new, plus one step's results (amsm's largest payload is
1.2 MB). A run continues as new after half of MAX_SIGNALS (CONTINUE_AFTER_SIGNALS), so the
count starts again at 0 before the server refuses the operator's signals (the CLI's
confirm, approve and decide are updates, which the signal count does not include).

Updates have limits of their own: `history.maxTotalUpdates` (2,000 a run, the server's
default; it counts the updates in flight and those the workflow accepted: a refused one is
neither counted nor stored, and the server suggests continuing as new at 90 %, which every
waiting run does), `history.maxInFlightUpdates`, MAX_IN_FLIGHT_UPDATES (1,000; Temporal's
default is 10) and `history.maxInFlightUpdatePayloads`, MAX_IN_FLIGHT_UPDATE_PAYLOADS
(2 MiB; Temporal's default is 20 MiB). The worker answers every update it is handed in its
workflow task's completion, and that answer carries the request back, header and identity
included (the server limits neither, up to the frontend's 4 MiB). Ten updates of 1.9 MB
headers at once, each refused by its validator, made one completion of 19 MB, over the
frontend's message limit, and the server terminated the run
(tests/integration/test_hardening.py). The requests in flight together are now at most
2 MiB (the server counts each request whole, header included), and the answer adds a
refusal for each of at most 1,000 (its message and the validator's stack: 0.9 and
1.0 KB measured, with a step name, at most 253 characters, said back), some 1.3 MB at
most: one completion stays under the frontend's 4 MiB whatever arrives; a request of
more than 2 MiB is refused on its own.

Why not one update at a time (MAX_IN_FLIGHT_UPDATES was 1 before issue 29): every update
the server refuses for a limit is an error inside the run's lock, and the server then
clears the run's cached state, update registry included (Temporal's workflow cache,
`makeReleaseFunc`: "if err != nil ... Clear()"; Temporal's architecture note on workflow update,
"Update Registry Lifecycle"). That aborts the update in flight ("workflow update was
aborted") and loses its speculative workflow task, the worker's answer to it is refused
("Task not found"), and the worker evicts the run and replays its whole history for the
next one. With one in flight, every second update sent at once was such a refusal: 20
junk updates a second kept the pair's run in that loop, the validator answering one a
second, and the operator's confirm and query waited behind it for more than 20 s
(docs/reference/limits.md, "Storms while the operator acts"). With ten, a storm of 30 small
updates a second was taken and refused by the validator, nothing cleared, while the
worker ran in the sender's process; with the worker in a process of its own, 90 a second
(`python -m bench.storm --rate 0 --updates 30`) still met the limit now and then, and one
refusal was enough to start the loop: the operator was locked out. With 1,000, 300 a
second are taken and refused, and the operator acts within 0.14 s
(bench/results/2026-12-07-storm-updates-1000-*.md; docs/reference/limits.md).
An accepted update is stored with its header too. Most move the run on (a step
confirmed, a decision taken, once; a second abort is refused), but one that its validator
lets through and the run then refuses (someone who is not an operator, kept for the
audit) is stored as well: that is not bounded here (docs/not-yet.md; an authorizer is).
"""

from __future__ import annotations

from workflows import search

MiB = 1024 * 1024

# The largest request the frontend takes (gRPC's default receive limit, which Temporal
# does not change): the most one signal event can hold, header and identity included.
GRPC_MAX_REQUEST = 4 * MiB

# Per payload (an activity's result, a workflow's or continuation's input, a signal's
# input). amsm's largest, measured with the worker's data converter at 1,000 clients
# (tests/unit/test_server_limits.py, docs/reference/limits.md): a switch's continuation with every
# client failed 1.21 MB, a pair status 0.86 MB, a control's result 0.74 MB. The limit
# must stay above them with margin: a continuation refused by the server would fail its
# workflow task for ever. Temporal's default, pinned; the warning at half of it.
BLOB_SIZE_ERROR = 2 * MiB
BLOB_SIZE_WARN = 1 * MiB

# Signals one run (one execution: a continuation starts again at 0) accepts; the server
# refuses the next ones ("exceeded workflow execution limit for signal events").
# Temporal's default is 10,000, which at 4 MiB each is 800 times the history limit.
MAX_SIGNALS = 8

# A run's history: the server terminates a run past HISTORY_SIZE_ERROR. Temporal's
# defaults, pinned: the bound above rests on them.
HISTORY_SIZE_ERROR = 50 * MiB
HISTORY_SIZE_WARN = 10 * MiB

# What a run's history can hold at most before a burst of signals (see above).
OWN_HISTORY_BOUND = 12 * MiB

# Updates one run takes at a time, and their requests' size together (see above); the
# server refuses the others with "limit on number of concurrent in-flight updates has
# been reached" or "limit on total payload size of in-flight updates has been reached".
MAX_IN_FLIGHT_UPDATES = 1000
MAX_IN_FLIGHT_UPDATE_PAYLOADS = 2 * MiB

DYNAMIC_CONFIG: dict[str, int] = {
    "limit.blobSize.error": BLOB_SIZE_ERROR,
    "limit.blobSize.warn": BLOB_SIZE_WARN,
    "history.maximumSignalsPerExecution": MAX_SIGNALS,
    "limit.historySize.error": HISTORY_SIZE_ERROR,
    "limit.historySize.warn": HISTORY_SIZE_WARN,
    "history.maxInFlightUpdates": MAX_IN_FLIGHT_UPDATES,
    "history.maxInFlightUpdatePayloads": MAX_IN_FLIGHT_UPDATE_PAYLOADS,
}


def limit_flags() -> list[str]:
    """`temporal server start-dev` flags that set DYNAMIC_CONFIG."""
    out: list[str] = []
    for key, value in DYNAMIC_CONFIG.items():
        out += ["--dynamic-config-value", f"{key}={value}"]
    return out


def dev_server_flags() -> list[str]:
    """Every `temporal server start-dev` flag amsm needs: its limits and search attributes."""
    return [*limit_flags(), *search.server_flags()]


def dynamic_config_yaml() -> str:
    """DYNAMIC_CONFIG as a Temporal dynamic config file (docker-compose.yml mounts it)."""
    lines = [
        "# Temporal dynamic config for amsm: generated from workflows/server.py",
        "# (docs/reference/limits.md), which says why each value. On a shared cluster, add",
        "#   constraints: {namespace: <amsm's namespace>}",
        "# to each value instead of the empty constraints (they then apply to amsm's only).",
    ]
    for key, value in DYNAMIC_CONFIG.items():
        lines += [f"{key}:", f"  - value: {value}", "    constraints: {}"]
    return "\n".join(lines) + "\n"
