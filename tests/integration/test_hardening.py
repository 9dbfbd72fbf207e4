"""Issue 14: a careless operator or a hostile client on the real dev server and lab. Each
test reproduces the mistake or the attack and checks that nothing was lost and that the
run goes on (or ends saying where the devices are)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError

from inventory.models import Inventory, Timing, fence_workflow_id
from lab.faults import set_side_fault
from lab.state import LabState
from tests.support.cli import cli, cli_json
from tests.support.driving import drive, step
from tests.support.fences import fence_on_x
from tests.support.lab import Lab
from tests.support.secrets import record_history
from tests.support.waiting import side_down, wait_for
from tests.support.worker import running_worker
from workers import version
from workers.worker import build_workers, other_builds, start_watch
from workflows.base import PairWorkflow
from workflows.limits import (
    MAX_PAYLOAD_BYTES,
)
from workflows.models import (
    ClientBatchInput,
    ClientTarget,
    Decision,
    FenceEnd,
    FenceInput,
    SplitInput,
    SwitchInput,
)


async def shown_when(temporal: Client, lab: Lab, run: str, ok, timeout: float = 60) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    shown: dict = {}
    while time.monotonic() < deadline:
        shown = await cli_json(temporal, lab, "show", run)
        if ok(shown):
            return shown
        await asyncio.sleep(0.2)
    raise AssertionError(f"not reached within {timeout} s: {json.dumps(shown)[:2000]}")


BIG = {"step": "switch-clients", "operator": "m", "note": "y" * 1_800_000}


async def start_fence(temporal: Client, inv: Inventory, started_by: str, reason: str = "test"):  # type: ignore[no-untyped-def]
    """A fence on X started by hand (as anyone who reaches Temporal can), under its id, on
    the pair's own queue: refused by the worker, a squatter until then."""
    return await temporal.start_workflow(
        "fence",
        FenceInput(pair=inv.pair, side="X", reason=reason, started_by=started_by),
        id=fence_workflow_id(inv.pair),
        task_queue=inv.queue,
    )


async def refused_with(handle, text: str) -> ApplicationError:  # type: ignore[no-untyped-def]
    """The run ends failed at once, its cause naming `text`."""
    try:
        await asyncio.wait_for(handle.result(), 30)
    except WorkflowFailureError as e:
        assert isinstance(e.cause, ApplicationError), e.cause
        assert text in e.cause.message, e.cause.message
        return e.cause
    raise AssertionError(f"the run went on; expected a refusal naming {text!r}")


async def test_a_gate_is_passed_only_by_an_approval(temporal: Client, lab_factory) -> None:  # type: ignore[no-untyped-def]
    """`amsm skip RUN approve-overwrite` used to go on and start replication over the other
    side's database. Now the skip is refused (CLI, update and signal alike) and nothing
    is started."""
    lab: Lab = await lab_factory(editors=1, ingest=0)
    async with running_worker(temporal, lab):
        run = (await cli_json(temporal, lab, "start", "switch", "--to", "Y"))["run_id"]
        shown = await drive(
            temporal,
            lab,
            run,
            "Y",
            until=lambda s: step(s, "approve-overwrite")["status"] == "awaiting-approval",
        )
        rc, out = await cli(temporal, lab, "skip", run, "approve-overwrite", "--reason", "hurry")
        assert rc != 0 and "only an approval passes it" in out, out
        handle = temporal.get_workflow_handle(lab.inventory.workflow_id, run_id=run)
        await handle.signal(
            "decide",
            {"step": "approve-overwrite", "action": "skip", "operator": "x", "reason": "ui"},
        )
        shown = await shown_when(temporal, lab, run, lambda s: s["rejected"])
        assert "only an approval passes it" in shown["rejected"][-1]["reason"]
        assert step(shown, "approve-overwrite")["status"] == "awaiting-approval"
        assert step(shown, "start-replication")["status"] == "pending"
        status = await cli_json(temporal, lab, "status")
        assert all(d["replication"] != "running" for d in status["dsm"].values()), status
        rc, out = await cli(temporal, lab, "abort", run, "--reason", "test over")
        assert rc == 0, out


async def test_a_cancel_request_is_an_abort_that_says_where_the_devices_are(
    temporal: Client,
    lab_factory,  # type: ignore[no-untyped-def]
) -> None:
    """ "Request Cancellation" in the Web UI used to cancel the activities in flight and end
    the run without a word. Now the client switches in flight finish and the checklist
    ends with where every device is."""
    lab: Lab = await lab_factory(editors=2, ingest=0, reboot_seconds=1.5)
    async with running_worker(temporal, lab):
        run = (await cli_json(temporal, lab, "start", "switch", "--to", "Y"))["run_id"]
        await drive(
            temporal,
            lab,
            run,
            "Y",
            until=lambda s: any(
                c["status"] == "switching" for c in step(s, "switch-clients").get("clients") or []
            ),
        )
        handle = temporal.get_workflow_handle(lab.inventory.workflow_id, run_id=run)
        await handle.cancel()
        await shown_when(temporal, lab, run, lambda s: s["decisions"])
        # Aborting already: a second abort is refused before the server stores it (an
        # accepted update is kept whole, header and all), and `amsm abort` says so calmly.
        with pytest.raises(WorkflowUpdateFailedError) as e:
            await handle.execute_update(
                PairWorkflow.decide_step, Decision(action="abort", reason="again", operator="t")
            )
        assert "the run is already aborting (by temporal (cancel request))" in str(e.value.cause)
        rc, out = await cli(temporal, lab, "abort", run, "--reason", "again")
        assert rc == 0 and out.startswith(f"aborting run {run}"), out
        result = await handle.result()  # the run completes; it is not cancelled
        assert result["state"] == "aborted", result
        clients = step(result, "switch-clients")["clients"]
        assert clients and all(c["status"] == "done" for c in clients), clients
        assert any("clients on Y: ED-01, ED-02" in x for x in result["final_state"]), result
        assert result["decisions"][-1]["operator"] == "temporal (cancel request)"
        status = await cli_json(temporal, lab, "status")
        assert {c["host"]: c["side"] for c in status["clients"]} == {"ED-01": "Y", "ED-02": "Y"}


async def test_dsm_set_main_is_refused_while_replication_copies_onto_it(
    temporal: Client,
    lab_factory,  # type: ignore[no-untyped-def]
) -> None:
    lab: Lab = await lab_factory(editors=1, ingest=0)
    async with running_worker(temporal, lab):
        rc, out = await cli(temporal, lab, "dsm", "set-main", "Y")
        assert rc != 0 and "rule 'main-only-when-not-replicated-onto'" in out, out
        # Absolute: an override changes nothing.
        rc, out = await cli(
            temporal,
            lab,
            "dsm",
            "set-main",
            "Y",
            "--override",
            "main-only-when-not-replicated-onto",
            "--reason",
            "x",
        )
        assert rc != 0 and "cannot be overridden" in out, out
        status = await cli_json(temporal, lab, "status")
        assert status["mode"] == "mirrored" and status["dsm"]["Y"]["mode"] == "backup"


async def test_bad_inputs_are_refused_with_a_sentence(temporal: Client, lab_factory) -> None:  # type: ignore[no-untyped-def]
    """A start from the Web UI with an unknown field, a name with a newline or a payload
    too big fails the run at once, saying why (it used to fail its workflow task for
    ever, holding the pair's id); the CLI says the same before anything starts."""
    lab: Lab = await lab_factory(editors=1, ingest=0)
    inv = lab.inventory
    async with running_worker(temporal, lab):
        for bad, why in (
            ({"pair": inv.pair, "to": "Y", "overides": []}, "Extra inputs are not permitted"),
            ({"pair": inv.pair, "to": "Y", "initiator": "a\nb"}, "initiator"),
            ({"pair": inv.pair, "to": "Y", "reason": "r" * (MAX_PAYLOAD_BYTES + 1)}, "limit"),
            ({"pair": inv.pair, "to": "Q"}, "to:"),
        ):
            handle = await temporal.start_workflow(
                "switch", bad, id=inv.workflow_id, task_queue=inv.queue
            )
            cause = await refused_with(handle, "switch refused: bad input")
            assert cause.type == "BadInput" and why in cause.message, cause
        rc, out = await cli(temporal, lab, "start", "switch", "--to", "Y", "--operator", "a" * 300)
        assert rc == 2 and "bad input: --operator" in out and "Traceback" not in out, out


async def test_only_the_pairs_id_runs_its_workflows(temporal: Client, lab_factory) -> None:  # type: ignore[no-untyped-def]
    """A switch started under another id used to run its steps beside the pair's run,
    and a client batch started by hand moved clients behind the pair's back."""
    lab: Lab = await lab_factory(editors=1, ingest=0)
    inv = lab.inventory
    async with running_worker(temporal, lab):
        handle = await temporal.start_workflow(
            "switch",
            SwitchInput(pair=inv.pair, to="Y", initiator="mallory"),
            id=f"{inv.workflow_id}-sneaky",
            task_queue=inv.queue,
        )
        await refused_with(handle, "one-workflow-per-pair")
        timing = Timing()
        handle = await temporal.start_workflow(
            "client-batch",
            ClientBatchInput(
                pair=inv.pair, clients=[ClientTarget(host="ED-01", to="Y")], timing=timing
            ),
            id=f"{inv.workflow_id}-by-hand",
            task_queue=inv.queue,
        )
        await refused_with(handle, "runs only as a child of the pair's run")
        status = await cli_json(temporal, lab, "status")
        assert status["mode"] == "mirrored"
        assert [c["side"] for c in status["clients"]] == ["X"]


async def test_a_taken_child_id_is_not_trusted(temporal: Client, lab_factory) -> None:  # type: ignore[no-untyped-def]
    """Somebody starts a workflow under the id the run's first client batch would take
    (it used to be readable from the run id); the batch goes under a new id, and every
    client is switched."""
    lab: Lab = await lab_factory(editors=1, ingest=0, reboot_seconds=0.3)
    inv = lab.inventory
    async with running_worker(temporal, lab):
        run = (await cli_json(temporal, lab, "start", "switch", "--to", "Y"))["run_id"]
        old_style = f"amsm-{inv.pair}-{run.replace('-', '')[-12:]}-switch-clients-1"
        # Held by a workflow that no worker runs (a task queue nobody polls).
        await temporal.start_workflow(
            "client-batch",
            {"pair": inv.pair, "clients": [], "timing": {}},
            id=old_style,
            task_queue="nobody-polls-this",
        )
        shown = await drive(temporal, lab, run, "Y")
        assert shown["state"] == "completed", shown
        clients = step(shown, "switch-clients")["clients"]
        assert [c["status"] for c in clients] == ["done"]
        assert clients[0]["workflow_id"] != old_style
        await temporal.get_workflow_handle(old_style).terminate("test over")


async def test_signals_before_the_run_knows_its_operators_are_checked(
    temporal: Client,
    lab_factory,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An abort sent in the first moment of a run (before the capabilities are read) used
    to be accepted from anyone."""
    lab: Lab = await lab_factory(editors=1, ingest=0)
    lab.edit_inventory(operators=["ann"])
    monkeypatch.setenv("AMSM_OPERATOR", "ann")
    inv = lab.inventory
    async with running_worker(temporal, lab):
        handle = await temporal.start_workflow(
            "switch",
            SwitchInput(pair=inv.pair, to="Y", initiator="ann"),
            id=inv.workflow_id,
            task_queue=inv.queue,
            start_signal="decide",
            start_signal_args=[{"action": "abort", "operator": "mallory", "reason": "ha"}],
        )
        shown = await shown_when(temporal, lab, handle.result_run_id or "", lambda s: s["rejected"])
        assert shown["rejected"][0]["operator"] == "mallory"
        assert "not an operator" in shown["rejected"][0]["reason"]
        assert shown["state"] in ("running", "awaiting-operator")
        rc, out = await cli(
            temporal, lab, "abort", shown["run_id"], "--reason", "x", "--operator", "ann"
        )
        assert rc == 0, out


async def test_a_start_without_the_cli_keeps_the_fence_check(temporal: Client, lab_factory) -> None:  # type: ignore[no-untyped-def]
    """The CLI refused to make main a side a fence still waits on; a start from the Web UI
    went around it. The run itself refuses now."""

    lab: Lab = await lab_factory(editors=1, ingest=0)
    inv = lab.inventory
    async with running_worker(temporal, lab):
        fence = await fence_on_x(temporal, lab)
        for kind, arg in (
            ("switch", SwitchInput(pair=inv.pair, to="X")),
            ("split", SplitInput(pair=inv.pair, main="Y")),
        ):
            handle = await temporal.start_workflow(
                kind, arg, id=inv.workflow_id, task_queue=inv.queue
            )
            await refused_with(handle, "the fence on X still waits")
        await fence.terminate("test over")


async def test_a_viewer_reads_the_pair_without_starting_a_workflow(
    temporal: Client,
    lab_factory,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`amsm status` started a workflow, so reading needed the right to write. A viewer
    now reads the pair's watch with a query (a read in Temporal's authorizer)."""
    lab: Lab = await lab_factory(editors=1, ingest=0)
    lab.edit_inventory(operators=["ann"], viewers=["vic"])
    inv = lab.inventory
    monkeypatch.setenv("AMSM_OPERATOR", "vic")
    async with running_worker(temporal, lab):
        rc, out = await cli(temporal, lab, "status")
        assert rc == 1 and "could not be read from its watch" in out, out
        await start_watch(temporal, inv)
        await start_watch(temporal, inv)  # a second worker's start finds it running
        deadline = time.monotonic() + 30
        while True:
            rc, out = await cli(temporal, lab, "status", "--json")
            if rc == 0 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.3)
        assert rc == 0, out
        data = json.loads(out)
        assert data["mode"] == "mirrored" and "as the pair's watch read it at" in data["read"]
        query = f"WorkflowType = 'pair-status' AND WorkflowId STARTS_WITH '{inv.workflow_id}'"
        assert [w async for w in temporal.list_workflows(query)] == []
        monkeypatch.setenv("AMSM_OPERATOR", "ann")
        assert (await cli_json(temporal, lab, "status"))["mode"] == "mirrored"  # read now
        assert len([w async for w in temporal.list_workflows(query)]) == 1
        await temporal.get_workflow_handle(f"{inv.workflow_id}-watch").terminate("test over")


async def test_a_worker_of_another_build_on_the_queue_is_named(
    temporal: Client, lab_factory
) -> None:  # type: ignore[no-untyped-def]
    """Workers of two codes on one queue would take each other's runs unnoticed."""
    lab: Lab = await lab_factory(editors=1, ingest=0)
    inv = lab.inventory
    assert version.build_of(f"w-1@h{version.tag()}") == version.build_id()
    assert version.others([f"a{version.tag()}", "old-amsm@h", "b@build-000000000000"]) == [
        "old-amsm@h",
        "b@build-000000000000",
    ]
    old = build_workers(temporal, inv, lab.inventory_path, identity="w-old@h@build-000000000000")
    async with old[0], old[1], old[2]:
        deadline = time.monotonic() + 30
        mixed: list[str] = []
        while not mixed and time.monotonic() < deadline:
            mixed = await other_builds(temporal, "default", inv.queue)
            await asyncio.sleep(0.5)
        assert mixed == ["w-old@h@build-000000000000"], mixed


async def test_the_same_client_named_twice_is_switched_once(temporal: Client, lab_factory) -> None:  # type: ignore[no-untyped-def]
    """`confirm move-editors --client ED-01 --client ed-01` rebooted ED-01 four times."""
    lab: Lab = await lab_factory(editors=1, ingest=0)
    async with running_worker(temporal, lab):
        run = (await cli_json(temporal, lab, "start", "split", "--main", "X"))["run_id"]
        extra = {"move-editors": ["--client", "ED-01", "--client", "ed-01"]}
        shown = await drive(temporal, lab, run, "Y", extra=extra)
        assert shown["state"] == "completed", shown
        assert [c["host"] for c in step(shown, "move-editors")["clients"]] == ["ED-01"]
        restarts = [h for _, h, cmd, _ in LabState(lab.dir).journal() if cmd == "Restart-Computer"]
        assert restarts == ["ED-01", "ED-01"], restarts  # a client switch restarts twice


async def test_only_the_pairs_run_starts_a_fence_and_only_operators_end_it(  # type: ignore[no-untyped-def]
    temporal: Client, lab_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fence started by hand, as anyone who reaches Temporal can, on the pair's own
    queue under the fence's id and in an operator's name: while no worker has run it, it
    is a squatter that blocks nothing (before, the worker's lookup could not query it and
    counted it as waiting on both sides); the worker refuses it at once. The fence an
    unplanned switch starts refuses an end by someone who is not an operator."""
    from temporalio.testing import ActivityEnvironment

    from activities.models import PairRef
    from activities.pair import PairActivities

    monkeypatch.setenv("AMSM_OPERATOR", "ann")
    lab: Lab = await lab_factory(editors=1, ingest=0)
    lab.edit_inventory(operators=["ann"])
    inv = lab.inventory
    forged = await start_fence(temporal, inv, "ann", "by hand")
    shown = await cli_json(temporal, lab, "fence")
    assert shown["fence"] is None, shown
    [sq] = shown["squatters"]
    assert sq["workflow_id"] == fence_workflow_id(inv.pair), sq
    assert f"started on its own, not by the pair's run {inv.workflow_id}" in sq["why"], sq
    acts = PairActivities(temporal, inv)
    assert await ActivityEnvironment().run(acts.fences_waiting, PairRef(pair=inv.pair)) == []
    async with running_worker(temporal, lab):
        await refused_with(forged, "a fence runs only as a child of the pair's run")
        record_history(await forged.fetch_history(), "fence-refused-by-hand.json")
        handle = await fence_on_x(temporal, lab, operator="ann")
        deadline = time.monotonic() + 30
        while True:
            try:
                await handle.execute_update("end", FenceEnd(operator="mallory", reason="mine"))
                raise AssertionError("a non-operator ended the fence")
            except WorkflowUpdateFailedError as e:
                if "still starting" in str(e.cause) and time.monotonic() < deadline:
                    await asyncio.sleep(0.2)
                    continue
                assert "mallory is not an operator" in str(e.cause), e.cause
                break
        await handle.execute_update("end", FenceEnd(operator="ann", reason="X rebuilt"))
        assert (await handle.result())["status"] == "ended"


async def test_a_fence_never_leaves_the_pair_with_no_main(lab_factory) -> None:  # type: ignore[no-untyped-def]
    """The fence's act, on a healthy pair whose main is X (no unplanned switch made Y
    main): putting X in backup would leave no main, so it refuses for good and changes
    nothing."""
    from temporalio.testing import ActivityEnvironment

    from activities.context import DeviceContext
    from activities.lost_side import LostSideActivities
    from activities.models import SideInput

    lab: Lab = await lab_factory(editors=1, ingest=0)
    ctx = DeviceContext(lab.inventory, lab.inventory_path)
    acts = LostSideActivities(ctx)
    with pytest.raises(ApplicationError) as e:
        await ActivityEnvironment().run(
            acts.fence_side, SideInput(pair=lab.inventory.pair, side="X")
        )
    assert e.value.non_retryable and "would leave the pair with no main" in str(e.value)
    modes = [(await asyncio.to_thread(ctx.dsm(side).read)).mode for side in ("X", "Y")]
    assert modes == ["main", "backup"], modes


async def test_a_server_that_cannot_answer_is_not_taken_for_no_run(  # type: ignore[no-untyped-def]
    lab_factory, tmp_path
) -> None:
    """Item 10: only "not found" means no run on the pair. A frontend that stopped
    answering (a dev server of its own, stopped under a connected client) leaves it
    unknown, and the interlocks built on pair_run_state refuse instead of allowing a
    control beside a run."""
    from temporalio.testing import ActivityEnvironment

    from activities.models import PairRef
    from activities.pair import PairActivities
    from tests.support.lab import free_port
    from tests.support.servers import start_server

    lab: Lab = await lab_factory(editors=1, ingest=0)
    port = free_port()
    server = await start_server(tmp_path / "t.db", port)
    try:
        temporal = await Client.connect(f"127.0.0.1:{port}")
        acts = PairActivities(temporal, lab.inventory)
        ref = PairRef(pair=lab.inventory.pair)
        assert not (await ActivityEnvironment().run(acts.pair_run_state, ref)).running
    finally:
        server.terminate()
        server.wait(30)
    with pytest.raises(ApplicationError) as e:
        await asyncio.wait_for(ActivityEnvironment().run(acts.pair_run_state, ref), 120)
    assert e.value.type == "Unreachable", e.value
    assert f"cannot tell whether a workflow runs on pair {lab.inventory.pair}" in str(e.value)


async def test_a_taken_fence_id_does_not_skip_the_fence(temporal: Client, lab_factory) -> None:  # type: ignore[no-untyped-def]
    """Item 8: a workflow that is not a fence holds the fence's usual id when X is lost.
    The unplanned switch does not take it for its fence: it starts the fence under
    another id, `amsm fence` finds that one, and X is fenced once it is back."""
    lab: Lab = await lab_factory(editors=1, ingest=0)
    inv = lab.inventory
    taken = fence_workflow_id(inv.pair)
    await temporal.start_workflow(
        "client-batch",
        {"pair": inv.pair, "clients": [], "timing": {}},
        id=taken,
        task_queue="nobody-polls-this",
    )
    try:
        async with running_worker(temporal, lab):
            set_side_fault(lab.dir, "X", "down")
            await wait_for(side_down(lab, "X"), "side X down")
            started = await cli_json(
                temporal, lab, "start", "switch", "--to", "Y", "--unplanned",
                "--reason", "X lost: test of a taken fence id",
            )  # fmt: skip
            shown = await drive(temporal, lab, started["run_id"], "Y", timeout=150)
            assert shown["state"] == "completed", shown
            fence = (await cli_json(temporal, lab, "fence"))["fence"]
            assert fence["workflow_id"] != taken and fence["workflow_id"].startswith(taken)
            assert fence["state"]["status"] == "waiting", fence
            set_side_fault(lab.dir, "X", "up")
            deadline = time.monotonic() + 60
            while fence["state"]["status"] == "waiting":
                assert time.monotonic() < deadline, fence
                await asyncio.sleep(0.3)
                fence = (await cli_json(temporal, lab, "fence"))["fence"]
            assert fence["state"]["status"] == "fenced", fence
            status = await cli_json(temporal, lab, "status")
            assert status["dsm"]["X"]["mode"] == "backup", status["dsm"]["X"]
    finally:
        await temporal.get_workflow_handle(taken).terminate("test over")
