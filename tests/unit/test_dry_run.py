"""The dry run's pure parts: the interlocks' decisions the drivers and the dry run share,
and the walk over a pair read (workflows/preview.py): what each step would do, what
would refuse it, and the run's own refusal in the words `amsm start` uses."""

from __future__ import annotations

from activities.drivers import refusals
from activities.drivers.plans import clients
from activities.models import Capabilities, DryRunFacts, Orphans
from client.commands.dry_run import dry_run_json, render_dry_run
from inventory.status import (
    AllSyncStatus,
    BrowseStatus,
    ClientStatus,
    DsmStatus,
    InSyncStatus,
    PairStatus,
    ServiceState,
    SmartBinsStatus,
)
from workflows.models import RestoreInput, SplitSwitchInput, SwitchInput
from workflows.preview import Walk, dry_run


def mirrored(x_main: bool = True, clients: int = 3) -> PairStatus:
    main, backup = ("X", "Y") if x_main else ("Y", "X")
    return PairStatus(
        pair="p",
        read_at="2026-12-01T04:00:00+00:00",
        dsm={
            main: DsmStatus(  # type: ignore[misc]
                host=f"dsm-{main.lower()}", side=main, mode="main", replication="running",
                role="master", asset_count=120,
            ),
            backup: DsmStatus(  # type: ignore[misc]
                host=f"dsm-{backup.lower()}", side=backup, mode="backup",
                replication="running", role="backup", asset_count=118,
            ),
        },
        smartbins=[SmartBinsStatus(host="sb-x1", side="X", pseudo_host=True),
                   SmartBinsStatus(host="sb-y1", side="Y", pseudo_host=True)],
        browse=[BrowseStatus(name="mediaframe", role="server", host="browse-srv", side=main,
                             running=True, services=[ServiceState(name="MF", status="Running")])],
        clients=[ClientStatus(host=f"ED-{i:02}", kind="editor", side=main, status="online")
                 for i in range(1, clients + 1)],
        insync=InSyncStatus(host="cp-01", running=True, main=main),
        allsync=AllSyncStatus(running_on=[main]),
    )  # fmt: skip


def facts(unreached: tuple[str, ...] = ()) -> DryRunFacts:
    reach = {f"ED-{i:02}": {"X": ["10.1.0.1"], "Y": ["10.2.0.1"]} for i in range(1, 4)}
    for h in unreached:
        reach[h]["Y"] = []
    return DryRunFacts(
        iscsi_port=3260,
        bridges={"X": "bridge-x", "Y": "bridge-y"},
        portals={"X": ["10.1.0.1"], "Y": ["10.2.0.1"]},
        nas={"X": "nas-x", "Y": "nas-y"},
        insync_process="InSync.exe",
        reached=reach,  # type: ignore[arg-type]
    )


def by_id(r):  # type: ignore[no-untyped-def]
    return {s.id: s for s in r.steps}


def test_a_clean_switch_says_what_each_step_would_do_and_nothing_refuses() -> None:
    r = dry_run("switch", SwitchInput(pair="p", to="Y"), mirrored(), facts(), Capabilities(), [])
    s = by_id(r)
    assert r.refused is None and not r.would_refuse
    assert s["stop-replication"].would == (
        "would stop replication on DSM dsm-x (running as master); "
        "stop replication on its backup dsm-y"
    )
    # The plan's changes, in the words the operations answer (the real run's).
    assert [(c.host, c.done) for c in s["stop-replication"].changes] == [
        ("dsm-x", "replication stopped on DSM dsm-x"),
        ("dsm-y", "replication stopped on its backup dsm-y"),
    ]
    assert s["dsm-x-backup"].would == "would set DSM dsm-x to backup"
    # After stop-replication, the interlocks of dsm-y-main and start-replication hold.
    assert s["dsm-y-main"].refused is None and s["start-replication"].refused is None
    assert s["switch-browse"].refused is None  # stop-browse stopped it first
    assert s["insync-y-main"].refused is None  # stop-insync stopped it first
    assert s["switch-clients"].would == "would switch 3 clients: ED-01, ED-02, ED-03 from X to Y"
    assert s["approve-overwrite"].would.endswith("asset counts now: dsm-y 118, dsm-x 120")
    assert r.checklist.title.startswith("DRY RUN (nothing changed): Switch X -> Y")
    data = dry_run_json(r)
    assert data["dry_run"] is True and all(x["refused"] is None for x in data["steps"])
    text = render_dry_run(r)
    assert "No step would be refused." in text
    # Its state is no run's: never "completed", which reads as a switch done.
    assert text.splitlines()[1].startswith("state: dry run, nothing changed   initiator: ")


def test_a_client_that_cannot_reach_the_portal_refuses_the_client_step_by_its_rule() -> None:
    r = dry_run(
        "switch", SwitchInput(pair="p", to="Y"), mirrored(), facts(("ED-02",)), Capabilities(), []
    )
    s = by_id(r)["switch-clients"]
    assert s.refused is not None and s.refused.rule == "client-switch-needs-bridge"
    assert s.refused.why == (
        "ED-02 cannot reach Y's bridge K2 server bridge-y at its iSCSI portal 10.2.0.1 on port 3260"
    )
    assert s.would.endswith("; refused for 1: ED-02 (cannot reach Y's portal)")
    assert [x.id for x in r.steps if x.refused] == ["switch-clients"]
    assert "REFUSED by client-switch-needs-bridge: ED-02 cannot" in render_dry_run(r)


def test_the_runs_own_refusal_is_the_workflows_sentence_on_every_step() -> None:
    r = dry_run("switch", SwitchInput(pair="p", to="X"), mirrored(), facts(), Capabilities(), [])
    assert r.refused == "switch to X refused: X is already main (mirrored, X main)"
    assert {x.refused.rule for x in r.steps if x.refused} == {"precondition"}
    assert len([x for x in r.steps if x.refused]) == len(r.steps)
    r = dry_run(
        "restore", RestoreInput(pair="p", main="X"), mirrored(), facts(), Capabilities(), []
    )
    assert r.refused is not None and "the pair must be split" in r.refused
    # A viewer's run would be refused; a fence that waits on the side made main too.
    caps = Capabilities(operators=["ann"])
    r = dry_run(
        "switch", SwitchInput(pair="p", to="Y", initiator="vic"), mirrored(), facts(), caps, []
    )
    assert r.refused == "switch refused: vic is not an operator of pair p"
    r = dry_run("switch", SwitchInput(pair="p", to="Y"), mirrored(), facts(), Capabilities(), ["Y"])
    assert r.refused is not None and "the fence on Y still waits" in r.refused


def test_split_switch_moves_the_pilots_first_and_the_rest_after() -> None:
    inp = SplitSwitchInput(pair="p", to="Y", pilots=["ed-02"])
    r = dry_run("split-switch", inp, mirrored(), facts(), Capabilities(), [])
    s = by_id(r)
    assert s["switch-pilots"].hosts == ["ED-02"]
    assert s["switch-clients"].hosts == ["ED-01", "ED-03"]
    inp = SplitSwitchInput(pair="p", to="Y", pilots=["ED-09"])
    r = dry_run("split-switch", inp, mirrored(), facts(), Capabilities(), [])
    assert r.refused == "split-switch to Y refused: unknown pilot client(s): ED-09"


def test_a_replication_still_copying_refuses_making_a_dsm_main() -> None:
    # The interlock the DSM driver refuses by, asked of the state the run would leave.
    no = refusals.main_while_replicated_onto("dsm-y", "running", "backup")
    assert no is not None and no.rule == "main-only-when-not-replicated-onto"
    assert refusals.main_while_replicated_onto("dsm-y", "stopped", "none") is None
    assert refusals.main_while_replicated_onto("dsm-y", None, None) is not None  # unread
    no = refusals.replication_from("dsm-y", "main", "dsm-x", "main")
    assert no is not None and no.rule == "replication-only-to-backup-peer"
    assert refusals.replication_from("dsm-y", "backup", "dsm-x", "backup").rule == (  # type: ignore[union-attr]
        "replication-only-from-main"
    )
    assert refusals.browse_switch_running("k2", []) is None
    assert refusals.insync_direction_running("InSync.exe", True).rule == (  # type: ignore[union-attr]
        "insync-direction-only-while-stopped"
    )


def test_an_unplanned_switch_tries_the_lost_side_and_passes_over_what_it_does_not_do() -> None:
    st = mirrored()
    st.dsm["X"] = DsmStatus(host="dsm-x", side="X", reachable=False, error="no answer")
    planned = dry_run("switch", SwitchInput(pair="p", to="Y"), st, facts(), Capabilities(), [])
    assert planned.refused is not None and "--unplanned --reason" in planned.refused
    inp = SwitchInput(pair="p", to="Y", unplanned=True, reason="fire")
    r = dry_run("switch", inp, st, facts(), Capabilities(), [])
    s = by_id(r)
    assert r.refused is None and not r.would_refuse
    assert "X does not answer now: DSM dsm-x does not answer" in s["dsm-x-backup"].would
    # Y's replication is stopped on its own, so making Y main is not refused.
    assert s["dsm-y-main"].refused is None
    passed = [x.id for x in r.checklist.steps if x.status == "skipped"]
    assert passed == ["approve-overwrite", "start-replication", "start-insync", "start-allsync"]
    assert "would pass it over" not in render_dry_run(r)  # the note says it once
    no_reason = SwitchInput(pair="p", to="Y", unplanned=True, reason=" ")
    r = dry_run("switch", no_reason, st, facts(), Capabilities(), [])
    assert (
        r.refused == "unplanned switch to Y refused: an unplanned switch needs a reason (--reason)"
    )


def split() -> PairStatus:
    st = mirrored()
    for d in st.dsm.values():
        d.mode, d.replication, d.role = "main", "stopped", "none"
    return st


def test_a_restore_shows_its_orphans_and_passes_over_the_purge_without_any() -> None:
    found = facts()
    found.orphans = Orphans(main="X", other="Y", host="sb-y1", clips=["News\\a.vmf"])
    r = dry_run("restore", RestoreInput(pair="p", main="X"), split(), found, Capabilities(), [])
    s = by_id(r)
    assert r.refused is None and not r.would_refuse
    assert s["find-orphans"].items == ["News\\a.vmf"]
    assert s["purge-orphans"].hosts == ["sb-y1"]
    assert "would be deleted on Y only: News\\a.vmf" in s["approve-purge"].would
    # Y's DSM to backup before start-replication: the replication interlocks hold.
    assert s["start-replication"].refused is None
    none = facts()
    none.orphans = Orphans(main="X", other="Y", host="sb-y1", clips=[])
    r = dry_run("restore", RestoreInput(pair="p", main="X"), split(), none, Capabilities(), [])
    assert [x.id for x in r.checklist.steps if x.status == "skipped"] == [
        "approve-purge",
        "purge-orphans",
    ]
    unread = facts()
    unread.orphans_error = "Unreachable: sb-y1: no answer"
    r = dry_run("restore", RestoreInput(pair="p", main="X"), split(), unread, Capabilities(), [])
    s = by_id(r)
    assert s["find-orphans"].refused.rule == "media-listing"  # type: ignore[union-attr]
    assert "could not be listed now" in s["approve-purge"].would  # never "no orphans"


def test_a_browse_config_file_without_its_twin_refuses_the_browse_switch() -> None:
    broken = facts()
    broken.browse_config = {"mediaframe": ["mediaframe: expected both a.exe.config and ..."]}
    r = dry_run("switch", SwitchInput(pair="p", to="Y"), mirrored(), broken, Capabilities(), [])
    assert [x.id for x in r.steps if x.refused] == ["switch-browse"]
    s = by_id(r)["switch-browse"]
    assert s.refused is not None and s.refused.rule == "browse-config"
    assert s.refused.why == "mediaframe: expected both a.exe.config and ..."


def test_stop_replication_leaves_in_the_walk_what_the_run_leaves_running() -> None:
    """The real stop stops the peer's job only when it runs as backup (the plan); a job of
    the peer's running as master stays, and the walk's later steps find it as the run
    would: the start finds it already running."""
    st = mirrored()
    st.dsm["Y"].role = "master"  # Y's own master job, left running by hand
    walk = Walk("switch", "X", "Y", st, facts(), Capabilities())
    stop = walk.step("stop-replication")
    assert stop.hosts == ["dsm-x"] and "dsm-y" not in stop.would, stop.would
    assert (walk.sim.dsm["Y"].replication, walk.sim.dsm["Y"].role) == ("running", "master")
    walk.step("dsm-x-backup")
    walk.step("dsm-y-main")
    start = walk.step("start-replication")
    assert start.would.startswith("replication already runs from DSM dsm-y"), start.would
    # The peer stopped by the plan (its backup job) is stopped in the walk too.
    walk = Walk("switch", "X", "Y", mirrored(), facts(), Capabilities())
    assert walk.step("stop-replication").hosts == ["dsm-x", "dsm-y"]
    assert walk.sim.dsm["Y"].replication == "stopped"


def test_the_dry_run_and_the_workflow_choose_the_clients_alike() -> None:
    """The dry run's switch-clients and the workflows' (PairWorkflow.clients_on and
    unknown_clients) ask the same plan: the same hosts, the same sentence."""
    st = mirrored()
    st.clients[1].side = "Y"  # already on Y: not switched again
    st.clients[2].side, st.clients[2].status = None, "offline"
    s = {x.id: x for x in dry_run("switch", SwitchInput(pair="p", to="Y"), st, facts(),
                                  Capabilities(), []).steps}  # fmt: skip
    read = [(c.host, c.side, c.status) for c in st.clients]
    assert s["switch-clients"].hosts == clients.to_switch(read, "X") == ["ED-01"]
    assert s["switch-clients"].would.endswith(clients.side_unknown(read))
    assert "ED-03 (offline)" in s["switch-clients"].would
