"""The read-only site check (`amsm check`, and the readiness watch's each check): the
short `pair-check` workflow, its own id beside any run."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import SignalWorkflowExecutionRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from api.refusal import Refused
from api.runs import cause
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


def stranger_tls(temporal: Client) -> TLSConfig | bool:
    """The TLS a program without credentials would use: the same server CA and name as
    the operator's connection (so it trusts the same server), no client certificate."""
    tls = temporal.service_client.config.tls
    if isinstance(tls, TLSConfig):
        return TLSConfig(server_root_ca_cert=tls.server_root_ca_cert, domain=tls.domain)
    return bool(tls)


async def probe_write(temporal: Client, pair: str) -> RPCStatusCode | str | None:
    """Try, without a client certificate or token, one write that changes nothing: a
    signal to a workflow id that cannot exist (`amsm-<pair>-probe-<random>`). Signalling
    is a write (the default authorizer asks a Writer of the namespace for
    SignalWorkflowExecution: temporalio/temporal common/api/metadata.go), and its
    authorization runs before the workflow is looked up, so a locked-down frontend
    refuses it (PERMISSION_DENIED / UNAUTHENTICATED) and an open one answers NOT_FOUND
    having recorded nothing: no workflow, no history, no visibility row. None: the
    connection itself was refused (mutual TLS); otherwise the status, or the error."""
    config = temporal.service_client.config
    try:
        stranger = await asyncio.wait_for(
            Client.connect(
                config.target_host, namespace=temporal.namespace, tls=stranger_tls(temporal)
            ),
            PROBE_SECONDS,
        )
    except Exception:
        return None  # refused at the handshake: no client certificate, no connection
    request = SignalWorkflowExecutionRequest(
        namespace=temporal.namespace,
        workflow_execution=WorkflowExecution(workflow_id=f"amsm-{pair}-probe-{uuid.uuid4().hex}"),
        signal_name="amsm-lockdown-probe",
        identity="amsm check: a program without credentials",
    )
    try:
        await stranger.workflow_service.signal_workflow_execution(
            request, timeout=timedelta(seconds=PROBE_SECONDS)
        )
    except RPCError as e:
        return e.status
    except Exception as e:  # noqa: BLE001 - what the check could not tell is a finding
        return str(e) or type(e).__name__
    return RPCStatusCode.OK  # a workflow of that id existed: the write went through


def frontend_finding(address: str, answer: RPCStatusCode | str) -> CheckFinding:
    expected = (
        "a write from a program without a client certificate or token refused "
        "(mutual TLS, the default authorizer)"
    )
    if answer in (RPCStatusCode.NOT_FOUND, RPCStatusCode.OK):
        found = (
            "it accepted an unauthenticated write: a signal sent without credentials was "
            "looked up, not refused (anyone who reaches it can start, signal and end runs)"
        )
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


async def with_frontend(temporal: Client, inv: Inventory, result: CheckResult) -> CheckResult:
    """The check's result, with the frontend's lock-down where the inventory says the
    site is in production (`site: {production: true}`): one that takes an
    unauthenticated write is a problem; one whose answer says neither, a warning."""
    if not inv.site.production:
        return result
    answer = await probe_write(temporal, inv.pair)
    if answer is None or answer in (RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNAUTHENTICATED):
        return result
    finding = frontend_finding(temporal.service_client.config.target_host, answer)
    if answer in (RPCStatusCode.NOT_FOUND, RPCStatusCode.OK):
        return result.model_copy(update={"problems": [*result.problems, finding], "ready": False})
    return result.model_copy(update={"warnings": [*result.warnings, finding]})
