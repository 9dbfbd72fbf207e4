"""The drivers' plans (activities/drivers/plans/), pure: from the facts an operation read,
what it would change on which host, in the dry run's words and in the operation's answer,
what is already so ("... : nothing to do", said in one place), and the interlock that
refuses it. The drivers execute these plans and the dry run prints them."""

from __future__ import annotations

from activities.drivers.plans import (
    Plan,
    browse,
    change,
    clients,
    dsm,
    nothing,
    smartbins,
    sync_tools,
    together,
)


def test_a_plan_says_what_it_would_do_and_what_it_did_in_one_place() -> None:
    p = change("h", "set it", "it set")
    assert (p.would, p.done, p.hosts, p.nothing_to_do) == ("would set it", "it set", ["h"], False)
    n = nothing("it is already so")
    assert (n.would, n.done, n.hosts) == ("it is already so: nothing to do", "it is already so", [])
    both = together([n, p, change("h", "again", "again done")])
    assert both.would == "it is already so; would set it; again"
    assert both.done == "it is already so; it set; again done"
    assert both.hosts == ["h"] and Plan().nothing_to_do


def test_a_dsm_made_main_while_replicated_onto_is_refused_never_already_main() -> None:
    p = dsm.set_mode("dsm-y", "main", "main", "running", "backup")
    assert p.refusal is not None and p.refusal.rule == "main-only-when-not-replicated-onto"
    assert not p.nothing_to_do  # the refusal comes before "already"
    # Unread replication refuses too (fail closed).
    assert dsm.set_mode("dsm-y", "main", "backup", None, None).refusal is not None
    p = dsm.set_mode("dsm-y", "main", "main", "stopped", "none")
    assert (p.done, p.would) == (
        "DSM dsm-y is already main",
        "DSM dsm-y is already main: nothing to do",
    )
    p = dsm.set_mode("dsm-x", "backup", "main", "running", "master")
    assert p.refusal is None and p.hosts == ["dsm-x"]
    assert (p.would, p.done) == ("would set DSM dsm-x to backup", "DSM dsm-x set to backup")


def test_stopping_replication_stops_the_backups_own_only_from_the_master() -> None:
    p = dsm.stop_replication("dsm-x", "running", "master", "dsm-y", "running", "backup")
    assert p.hosts == ["dsm-x", "dsm-y"]
    assert p.done == "replication stopped on DSM dsm-x; replication stopped on its backup dsm-y"
    p = dsm.stop_replication("dsm-x", "stopped", "none", "dsm-y", "running", "backup")
    assert p.would == (
        "replication is already stopped on DSM dsm-x; would stop replication on its backup dsm-y"
    )
    p = dsm.stop_replication("dsm-x", "failed", "master", "dsm-y", "stopped", "none")
    assert p.nothing_to_do and "its last run failed" in p.would
    # From a backup DSM, or without its peer (lost): only its own.
    assert dsm.stop_replication(
        "dsm-y", "running", "backup", "dsm-x", "running", "backup"
    ).hosts == ["dsm-y"]
    assert dsm.stop_replication("dsm-y", "running", "master").hosts == ["dsm-y"]


def test_replication_starts_only_from_a_main_dsm_onto_a_backup_one() -> None:
    p = dsm.start_replication(
        "dsm-y", "main", "stopped", "none", "dsm-x", "backup", "stopped", "none"
    )
    assert p.refusal is None and p.hosts == ["dsm-y", "dsm-x"]
    assert p.done == "replication started from DSM dsm-y to dsm-x; dsm-x runs as replication backup"
    split = dsm.start_replication("dsm-y", "main", "stopped", "none", "dsm-x", "main", None, None)
    assert split.refusal is not None and split.refusal.rule == "replication-only-to-backup-peer"
    back = dsm.start_replication("dsm-y", "backup", None, None, "dsm-x", "backup", None, None)
    assert back.refusal is not None and back.refusal.rule == "replication-only-from-main"
    runs = dsm.start_replication(
        "dsm-y", "main", "running", "master", "dsm-x", "backup", "running", "backup"
    )
    assert runs.nothing_to_do and runs.done == (
        "replication already runs from DSM dsm-y; dsm-x already runs as replication backup"
    )


def test_a_start_is_blocked_while_a_job_runs_in_the_other_role_after_the_interlocks() -> None:
    peer = dsm.start_replication(
        "dsm-y", "main", "stopped", "none", "dsm-x", "backup", "running", "master"
    )
    assert peer.refusal is None and peer.blocked is not None
    assert (peer.blocked.host, peer.blocked.name) == ("dsm-x", "replication-running")
    assert peer.blocked.why == (
        "DSM dsm-x runs replication as master, not as backup; stop it first (amsm replication stop)"
    )
    # The join alone says the same (one sentence, whoever asks).
    assert dsm.join_as_backup("dsm-x", "running", "master").blocked == peer.blocked
    mine = dsm.start_replication(
        "dsm-y", "main", "running", "backup", "dsm-x", "backup", "stopped", "none"
    )
    assert mine.blocked is not None and mine.blocked.host == "dsm-y"
    assert mine.blocked.why.startswith("DSM dsm-y runs replication as backup, not as master")
    # An interlock first: the split pair is refused by its rule, the block comes after.
    split = dsm.start_replication(
        "dsm-y", "main", "stopped", "none", "dsm-x", "main", "running", "master"
    )
    assert split.refusal is not None and split.blocked is not None
    # A failed job does not block: it is started again.
    assert (
        dsm.start_replication(
            "dsm-y", "main", "failed", "master", "dsm-x", "backup", "failed", "master"
        ).blocked
        is None
    )


def test_smartbins_of_a_side_go_backup_the_others_stopped_before_the_pseudo_host() -> None:
    servers = [
        smartbins.Server("sb-x1", True, "Normal", pseudo_host=True),
        smartbins.Server("sb-x2", True, "Normal"),
    ]
    p = smartbins.side_backup(servers)
    assert p.hosts == ["sb-x2", "sb-x1"]
    assert p.done == "SmartBins on sb-x2 stopped; SmartBins on sb-x1 running in pseudo mode"
    # A stopped server's mode does not matter; a running one in the wrong mode does.
    assert smartbins.smartbins_set("sb", False, "Pseudo", "Normal", False).nothing_to_do
    assert not smartbins.smartbins_set("sb", True, "Pseudo", "Normal", True).nothing_to_do
    assert smartbins.side_main([smartbins.Server("sb-y1", True, "Normal", True)]).would == (
        "SmartBins on sb-y1 already running in normal mode: nothing to do"
    )


def test_the_insync_direction_changes_only_while_insync_is_stopped() -> None:
    p = sync_tools.insync_set_main("cp-01", "InSync.exe", True, "X", "Y", None)
    assert p.refusal is not None and p.refusal.rule == "insync-direction-only-while-stopped"
    assert p.done == "InSync on cp-01 set to copy Y -> X"
    # Already by its registry and its Insync.cfg: nothing; the cfg not read (a dry run):
    # said so; the cfg not the template's: set again.
    assert sync_tools.insync_set_main("cp-01", "I", False, "Y", "Y", True).done == (
        "InSync on cp-01 already copies Y -> X"
    )
    assert sync_tools.insync_set_main("cp-01", "I", False, "Y", "Y", None).would.endswith(
        "by its registry: nothing to do"
    )
    assert not sync_tools.insync_set_main("cp-01", "I", False, "Y", "Y", False).nothing_to_do
    t = sync_tools.tool_set("AllSync", "nas-x", "AllSyncSvc", True, False)
    assert (t.would, t.done) == (
        "would stop AllSync on nas-x (its service)",
        "AllSync stopped on nas-x (service AllSyncSvc)",
    )
    assert (
        sync_tools.tool_set("InSync", "cp", "S", False, False).done
        == "InSync already stopped on cp"
    )


def test_browse_switches_only_stopped_components_even_one_already_there() -> None:
    p = browse.switch("k2-mdi", "mdi-k2", ["K2MDI"], "Y", "Y")
    assert p.refusal is not None and p.refusal.rule == "browse-switch-only-stopped"
    assert p.nothing_to_do and p.done == "Browse k2-mdi already points at Y"
    p = browse.switch("k2-mdi", "mdi-k2", [], "X", "Y")
    assert p.refusal is None and p.would == "would switch Browse k2-mdi on mdi-k2 (from X) to Y"
    s = browse.stop("mf", "browse-srv", {"A": "Running", "B": "Stopped"}, ["A", "B"])
    assert s.done == "Browse mf stopped (A)" and s.hosts == ["browse-srv"]
    assert browse.start("mf", "browse-srv", {"A": "Running"}, ["A"]).done == (
        "Browse mf already running"
    )


def test_browse_is_already_active_only_when_every_component_runs_and_points_there() -> None:
    p = browse.already_active("Y", [("Y", True), ("Y", True)])
    assert p is not None and p.would == "Browse already Active on Y: nothing to do"
    assert browse.already_active("Y", [("Y", True), ("Y", False)]) is None
    assert browse.already_active("Y", [("Y", True), ("X", True)]) is None
    # No Browse components: nothing to move, as the move always answered.
    empty = browse.already_active("Y", [])
    assert empty is not None and empty.done == "Browse already Active on Y"


def test_a_client_step_switches_the_clients_on_the_side_but_those_moved_before() -> None:
    read = [("ED-01", "X", "online"), ("ED-02", "Y", "online"), ("ed-03", "X", "online"),
            ("ED-04", None, "offline")]  # fmt: skip
    assert clients.to_switch(read, "X") == ["ED-01", "ed-03"]
    assert clients.to_switch(read, "X", moved=["ED-03"]) == ["ED-01"]  # a pilot, any case
    assert clients.to_switch(read, "Y") == ["ED-02"]
    assert clients.side_unknown(read) == "; not switched (side unknown): ED-04 (offline)"
    assert clients.side_unknown(read[:3]) == ""
