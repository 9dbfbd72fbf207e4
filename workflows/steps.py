"""The step tables of shared/WORKFLOWS.md, with their ids, for either direction."""

from __future__ import annotations

from inventory.models import Side
from workflows.models import StepDef


def switch_steps(a: Side, b: Side) -> list[StepDef]:
    """switch (A main -> B main), manual chapter 4: 18 steps."""
    la, lb = a.lower(), b.lower()
    rows = [
        ("stop-replication", "auto", f"Stop replication on {a}'s DSM; both DSMs report stopped"),
        (f"dsm-{la}-backup", "auto", f"{a}'s DSM to backup"),
        ("stop-browse", "auto", "Stop all Browse components"),
        ("switch-browse", "auto", f"Switch all Browse components to {b} (do not start)"),
        ("stop-insync", "manual", "Stop InSync on the Control Point PC"),
        ("stop-allsync", "manual", f"Stop AllSync on {a}'s NAS head"),
        (f"insync-{lb}-main", "auto", f"Set InSync direction {b} -> {a}"),
        (
            f"smartbins-{la}-backup",
            "auto",
            f"{a}'s SmartBins to backup (pseudo on the PseudoSmartBins host)",
        ),
        (f"dsm-{lb}-main", "auto", f"{b}'s DSM to main"),
        (f"smartbins-{lb}-main", "auto", f"{b}'s SmartBins to main"),
        ("switch-clients", "auto", f"Switch every client on {a} to {b}, in parallel"),
        ("check-projects", "manual", f"Open a few Aurora projects on {b} and check them"),
        ("start-browse", "auto", f"Start all Browse components; Browse Active on {b}"),
        (f"verify-{lb}", "manual", f"Record on {b}, edit a project on {b}, verify Browse"),
        (
            "approve-overwrite",
            "gate",
            f"From here on {a}'s database and media are overwritten from {b}",
        ),
        ("start-replication", "auto", f"Start replication on {b}'s DSM; {b} master, {a} backup"),
        ("start-insync", "manual", "Start InSync"),
        ("start-allsync", "manual", f"Start AllSync on {b}'s NAS head"),
    ]
    return [StepDef(id=i, kind=k, title=t) for i, k, t in rows]  # type: ignore[arg-type]
