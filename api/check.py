"""The read-only site check (`amsm check`, and the readiness watch's each check): the
short `pair-check` workflow, its own id beside any run."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import (
    DescribeNamespaceRequest,
    SignalWorkflowExecutionRequest,
)
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from api.refusal import Refused
from api.runs import cause
from inventory import intent
from inventory.models import Inventory
from workflows.check import READS_PER_HOST, CheckFinding, CheckResult, PairCheckWorkflow
from workflows.models import CheckInput

R = TypeVar("R")


def read_time_limit(inv: Inventory, reads_per_host: int, spare: float = 120) -> float:
    """How long a read-only workflow of the pair (the check, the survey, a dry run) may
    take: each host read `reads_per_host` times, one more for its connection, and a spare."""
    t = inv.timing
    return (reads_per_host + 1) * t.operation_timeout + t.connect_timeout + spare


def time_limit(inv: Inventory) -> float:
    """The site check's time limit (the readiness watch waits as long for each check)."""
    return read_time_limit(inv, READS_PER_HOST)


async def start_read(
    temporal: Client,
    inv: Inventory,
    run: Callable[[Any, CheckInput], Awaitable[R]],
    operator: str,
    name: str,
    reads_per_host: int,
) -> WorkflowHandle[Any, R]:
    """Start a read-only workflow of the pair (`name`: check, survey) under an id of its
    own, never the pair's one-workflow id, so it runs beside a switch; its handle (the
    caller follows its progress)."""
    try:
        return await temporal.start_workflow(
            run,
            CheckInput(pair=inv.pair, initiator=operator),
            id=f"{inv.workflow_id}-{name}-{uuid.uuid4().hex[:12]}",
            task_queue=inv.queue,
            execution_timeout=timedelta(seconds=read_time_limit(inv, reads_per_host)),
        )
    except Exception as e:
        raise Refused(f"the {name} of pair {inv.pair} could not start: {cause(e)}") from None


async def start_check(
    temporal: Client, inv: Inventory, operator: str
) -> WorkflowHandle[Any, CheckResult]:
    """Start the site check of the pair; its handle (the caller follows its progress)."""
    return await start_read(temporal, inv, PairCheckWorkflow.run, operator, "check", READS_PER_HOST)


# -- the frontend's lock-down, where the inventory says production ---------------------
LOCKDOWN = "docs/site/production.md#lock-down"
# What a stranger's program gets to try before the check says it could not tell.
PROBE_SECONDS = 10.0


# An answer to a probe: the status of its signal, words for what it could not tell, or
# REFUSED: the server ended the TLS handshake (no client certificate it takes).
Answer = RPCStatusCode | str
REFUSED = "refused at the TLS handshake"
HOLDING = (REFUSED, RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNAUTHENTICATED)
TAKEN = (RPCStatusCode.NOT_FOUND, RPCStatusCode.OK)
# How the SDK's connection (Rust: tonic over rustls) says the server ended the handshake:
# a TLS alert (CertificateRequired, UnknownCA, BadCertificate: RFC 8446 6.2), or, in TLS
# 1.3, where the server checks the client's certificate after the client thinks the
# handshake done, the connection closed on the first call. A DNS failure, a refused TCP
# connection or a timeout is none of these: the check could not tell.
CLOSED_SIGNS = (
    "received fatal alert",
    "BrokenPipe",
    "ConnectionReset",
    "UnexpectedEof",
    "connection closed",
)


def refused_at_handshake(error: BaseException) -> bool:
    """Whether a failed connect is the server refusing the TLS handshake (and not a
    timeout, a name that does not resolve, a refused TCP connection, ...)."""
    text = str(error)
    if "received fatal alert" in text:
        return True
    return "after connection" in text and any(sign in text for sign in CLOSED_SIGNS)


def probe_tls(temporal: Client, certified: bool) -> TLSConfig | bool:
    """The TLS of a probe: the same server CA and name as the operator's connection (so
    it trusts the same server); the operator's client certificate too if `certified`
    (a certificate without a token), else none (a stranger)."""
    tls = temporal.service_client.config.tls
    if isinstance(tls, TLSConfig):
        own = (tls.client_cert, tls.client_private_key) if certified else (None, None)
        return TLSConfig(
            server_root_ca_cert=tls.server_root_ca_cert,
            domain=tls.domain,
            client_cert=own[0],
            client_private_key=own[1],
        )
    return bool(tls)


def has_client_cert(temporal: Client) -> bool:
    tls = temporal.service_client.config.tls
    return isinstance(tls, TLSConfig) and tls.client_cert is not None


async def probe_write(temporal: Client, pair: str, certified: bool = False) -> Answer:
    """Try, without a token (and without a client certificate unless `certified`), one
    write that changes nothing: a signal to a workflow id that cannot exist
    (`amsm-<pair>-probe-<random>`). Signalling is a write (the default authorizer asks a
    Writer of the namespace for SignalWorkflowExecution: temporalio/temporal
    common/api/metadata.go), and its authorization runs before the workflow is looked
    up, so a locked-down frontend refuses it (PERMISSION_DENIED / UNAUTHENTICATED) and
    an open one answers NOT_FOUND having recorded nothing: no workflow, no history, no
    visibility row. REFUSED: the server ended the handshake (mutual TLS); otherwise the
    status, or words for what went wrong."""
    config = temporal.service_client.config
    tls = probe_tls(temporal, certified)
    try:
        prober = await asyncio.wait_for(
            Client.connect(config.target_host, namespace=temporal.namespace, tls=tls),
            PROBE_SECONDS,
        )
    except TimeoutError:
        return f"no connection within {PROBE_SECONDS:g} s"
    except Exception as e:  # noqa: BLE001 - what the check could not tell is a finding
        return REFUSED if refused_at_handshake(e) else (str(e) or type(e).__name__)
    who = "a client certificate without a token" if certified else "a program without credentials"
    request = SignalWorkflowExecutionRequest(
        namespace=temporal.namespace,
        workflow_execution=WorkflowExecution(workflow_id=f"amsm-{pair}-probe-{uuid.uuid4().hex}"),
        signal_name="amsm-lockdown-probe",
        identity=f"amsm check: {who}",
    )
    try:
        await prober.workflow_service.signal_workflow_execution(
            request, timeout=timedelta(seconds=PROBE_SECONDS)
        )
    except RPCError as e:
        return e.status
    except Exception as e:  # noqa: BLE001 - what the check could not tell is a finding
        return str(e) or type(e).__name__
    return RPCStatusCode.OK  # a workflow of that id existed: the write went through


def frontend_finding(address: str, answer: Answer, certified: bool = False) -> CheckFinding:
    """The finding of a probe that did not find the lock-down holding. `certified`: the
    probe presented the operator's own client certificate, without a token."""
    if certified:
        expected = (
            "a write with a client certificate of the site's CA but no token refused "
            "(the default authorizer)"
        )
        taken = (
            "it accepted a write from a client certificate without a token: mutual TLS "
            "without the authorizer lets every certificate's holder (an engineer's, the "
            "Web UI's) start, signal and end runs"
        )
    else:
        expected = (
            "a write from a program without a client certificate or token refused "
            "(mutual TLS, the default authorizer)"
        )
        taken = (
            "it accepted an unauthenticated write: a signal sent without credentials was "
            "looked up, not refused (anyone who reaches it can start, signal and end runs)"
        )
    if answer in TAKEN:
        found = taken
    else:
        name = answer.name if isinstance(answer, RPCStatusCode) else answer
        found = f"could not tell: the probe's signal was answered {name}"
    return CheckFinding(
        host=f"temporal {address}",
        check="temporal-frontend",
        expected=expected,
        found=found,
        fix=f"lock the frontend down with amsm auth init's configuration ({LOCKDOWN})",
        steps=[],
    )


def verdict(stranger: Answer, certified: Answer | None) -> tuple[Answer, bool] | None:
    """What the check reports of the two probes' answers (`certified` None: not tried,
    the operator has no client certificate): None, the lock-down holding; else the
    answer to report and whether it was the certified probe's."""
    if stranger not in HOLDING:
        return stranger, False
    if certified is None or certified in (
        RPCStatusCode.PERMISSION_DENIED,
        RPCStatusCode.UNAUTHENTICATED,
    ):
        return None
    return certified, True


# -- the namespace's retention, where the pair signs its acts ---------------------------
# A signed start's, control's or filing's nonce is held by a workflow id (workflows/
# nonce.py) for as long as the namespace keeps closed workflows: it must outlive the
# intent (good for ten minutes after its signing, a minute of clock ahead). Temporal
# refuses a retention under a day unless its config allows less (the dev server:
# "A valid retention period is not set on request" for five minutes): this guards such
# a server.
NONCE_MUST_OUTLIVE = intent.WINDOW + intent.SKEW


def retention_finding(namespace: str, kept: timedelta | None, error: str = "") -> CheckFinding:
    expected = (
        f"closed workflows kept longer than a signed act is good for "
        f"({int(NONCE_MUST_OUTLIVE.total_seconds() // 60)} minutes), so that its nonce is"
    )
    found = (
        f"could not tell: the namespace {namespace} could not be read: {error}"
        if kept is None
        else f"namespace {namespace} keeps closed workflows {kept}: a signed act could be "
        "used again once its nonce is forgotten"
    )
    return CheckFinding(
        host=f"temporal namespace {namespace}",
        check="temporal-retention",
        expected=expected,
        found=found,
        fix=f"temporal operator namespace update -n {namespace} --retention 72h "
        "(docs/operators/signed-acts.md)",
        steps=[],
    )


async def with_retention(temporal: Client, inv: Inventory, result: CheckResult) -> CheckResult:
    """The check's result, with the namespace's retention where the pair lists keys: a
    retention shorter than a signed act's life is a problem; one that cannot be read, a
    warning."""
    if not (inv.operator_keys or inv.console_key):
        return result
    try:
        described = await temporal.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=temporal.namespace)
        )
    except RPCError as e:
        unread = retention_finding(temporal.namespace, None, cause(e))
        return result.model_copy(update={"warnings": [*result.warnings, unread]})
    kept = described.config.workflow_execution_retention_ttl.ToTimedelta()
    problem = retention_problem(temporal.namespace, kept)
    if problem is None:
        return result
    return result.model_copy(update={"problems": [*result.problems, problem], "ready": False})


def retention_problem(namespace: str, kept: timedelta) -> CheckFinding | None:
    """The problem with keeping closed workflows `kept` (None: long enough)."""
    return None if kept > NONCE_MUST_OUTLIVE else retention_finding(namespace, kept)


async def with_frontend(temporal: Client, inv: Inventory, result: CheckResult) -> CheckResult:
    """The check's result, with the frontend's lock-down where the inventory says the
    site is in production (`site: {production: true}`): two probes, a stranger (no
    certificate, no token) and, when the operator connects with a client certificate,
    that certificate without a token (mutual TLS alone refuses the first at the
    handshake and takes the second). A write either takes is a problem; an answer that
    says neither, a warning."""
    if not inv.site.production:
        return result
    stranger = await probe_write(temporal, inv.pair)
    certified = None
    if stranger in HOLDING and has_client_cert(temporal):
        certified = await probe_write(temporal, inv.pair, certified=True)
    said = verdict(stranger, certified)
    if said is None:
        return result
    answer, by_cert = said
    finding = frontend_finding(temporal.service_client.config.target_host, answer, by_cert)
    if answer in TAKEN:
        return result.model_copy(update={"problems": [*result.problems, finding], "ready": False})
    return result.model_copy(update={"warnings": [*result.warnings, finding]})
