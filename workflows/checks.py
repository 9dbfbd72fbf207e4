"""The site check's one table: which steps each check would stop when it finds a problem,
in the step ids of the workflow kinds (workflows/kinds.py). A check's steps are found
in every kind's table for either direction, so a renamed step fails the unit test
that every pattern names a step."""

from __future__ import annotations

from pydantic import BaseModel

from activities.models import ANSWERS, CheckRole
from inventory.models import SIDES, Side
from workflows.kinds import KINDS


class StepRef(BaseModel):
    kind: str  # the workflow kind (`amsm start KIND`)
    step: str  # its step id


_DSM = ("stop-replication", "dsm-{s}-backup", "dsm-{s}-main", "start-replication")
_SMARTBINS = ("smartbins-{s}-backup", "smartbins-{s}-main")
_BROWSE = ("stop-browse", "switch-browse", "start-browse", "browse-to-{s}")
_CLIENTS = ("switch-clients", "switch-pilots", "move-editors")
_INSYNC = ("insync-{s}-main", "stop-insync", "start-insync")
_ALLSYNC = ("stop-allsync", "start-allsync")

# What a host's own transport or shell stops: every step that acts on a host of its role
# (the steps of the role's answers check).
ITS_ROLE = ("{role}",)

# check -> the step ids it would stop; `{s}` is the host's side in lower case (either
# side for a host both sides share). A check with no steps stops nothing (a warning);
# ITS_ROLE: the steps of the host's role.
CHECK_STEPS: dict[str, tuple[str, ...]] = {
    "dsm-answers": _DSM,
    "dsm-job": _DSM,
    "dsm-permissions": _DSM,
    "smartbins-answers": _SMARTBINS,
    "smartbins-service": _SMARTBINS,
    "smartbins-registry": _SMARTBINS,
    "nas-answers": _ALLSYNC,
    "allsync-service": _ALLSYNC,
    "control-point-answers": _INSYNC,
    "insync-service": _INSYNC,
    "insync-registry": _INSYNC,
    "insync-config": _INSYNC,
    "browse-answers": _BROWSE,
    "browse-service": _BROWSE,
    "browse-config": _BROWSE,
    "client-answers": _CLIENTS,
    "client-iscsi": _CLIENTS,
    "client-portal": _CLIENTS,
    "client-volume": _CLIENTS,
    "client-target": _CLIENTS,
    "client-registry": _CLIENTS,
    "host-answers": (),
    "clock": (),
    "host-key": ITS_ROLE,
    "certificate": ITS_ROLE,
    "winrm-basic": ITS_ROLE,
    "winrm-quota": ITS_ROLE,
    "ssh-shell": ITS_ROLE,
    "powershell": ITS_ROLE,
}


def steps_stopped(check: str, side: Side | None, role: CheckRole | None = None) -> list[StepRef]:
    """The steps of every kind, in either direction, that `check` would stop on a host
    of `side` (None: shared by both sides) and `role` (for the checks of ITS_ROLE), in
    the kinds' order, each once."""
    patterns = CHECK_STEPS[check]
    if patterns == ITS_ROLE:
        patterns = CHECK_STEPS[ANSWERS[role]] if role is not None else ()
    sides = [side] if side else list(SIDES)
    wanted = {p.format(s=s.lower()) for p in patterns for s in sides}
    out: list[StepRef] = []
    for kind in KINDS.values():
        for direction in SIDES:
            for step in kind.steps(direction):
                ref = StepRef(kind=kind.name, step=step.id)
                if step.id in wanted and ref not in out:
                    out.append(ref)
    return out
