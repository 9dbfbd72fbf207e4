"""Pair-mode derivation from what the DSMs report."""

from inventory.status import BrowseStatus, DsmStatus, browse_active_on, derive_mode


def dsm(
    side: str, mode: str | None, repl: str = "stopped", role: str = "none", ok: bool = True
) -> DsmStatus:
    return DsmStatus(
        host=f"dsm-{side.lower()}",
        side=side,
        mode=mode,
        replication=repl if ok else None,
        role=role if ok else None,
        reachable=ok,
        mode_since="2026-11-25T08:00:00Z",
    )  # type: ignore[arg-type]


def test_mirrored_x_main() -> None:
    mode, main, why = derive_mode(
        {"X": dsm("X", "main", "running", "master"), "Y": dsm("Y", "backup", "running", "backup")}
    )
    assert (mode, main) == ("mirrored", "X") and "replicating to Y" in why


def test_mirrored_y_main() -> None:
    mode, main, _ = derive_mode(
        {"X": dsm("X", "backup", "running", "backup"), "Y": dsm("Y", "main", "running", "master")}
    )
    assert (mode, main) == ("mirrored", "Y")


def test_split() -> None:
    assert derive_mode({"X": dsm("X", "main"), "Y": dsm("Y", "main")})[:2] == ("split", None)


def test_inconsistent_cases_say_why() -> None:
    cases = [
        ({"X": dsm("X", "main", "running", "master"), "Y": dsm("Y", "main")}, "both DSMs are main"),
        ({"X": dsm("X", "backup"), "Y": dsm("Y", "backup")}, "no side is main"),
        ({"X": dsm("X", "main"), "Y": dsm("Y", "backup")}, "replication on dsm-x is stopped"),
        (
            {"X": dsm("X", "main", ok=False), "Y": dsm("Y", "backup")},
            "dsm-x (side X) is not responding",
        ),
        (
            {"X": dsm("X", "main", "running", "master"), "Y": dsm("Y", "backup", "stopped")},
            "dsm-y reports replication stopped",
        ),
    ]
    for d, why in cases:
        mode, _, reason = derive_mode(d)  # type: ignore[arg-type]
        assert mode == "inconsistent", d
        assert why in reason, reason


def test_state_texts_follow_the_manual() -> None:
    assert dsm("X", "main").state_text == "Online since 2026-11-25 08:00"
    assert dsm("Y", "backup", "running", "backup").state_text == "Backup"
    assert dsm("Y", "backup").state_text == "Standby since 2026-11-25 08:00"
    assert dsm("Y", "backup", ok=False).state_text == "Not Responding"


def test_browse_active_only_when_all_run_on_one_side() -> None:
    a = BrowseStatus(name="a", role="k2-mdi", host="h", running=True, side="Y")
    b = BrowseStatus(name="b", role="news-mdi", host="h", running=True, side="Y")
    assert browse_active_on([a, b]) == "Y"
    assert browse_active_on([a, b.model_copy(update={"running": False})]) is None
    assert browse_active_on([a, b.model_copy(update={"side": "X"})]) is None
