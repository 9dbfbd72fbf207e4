"""Inputs and results of the activities: small pydantic models, never a secret."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from inventory.blackout import Window
from inventory.models import Approval, Side


class PairRef(BaseModel):
    pair: str


class RunsSince(BaseModel):
    """A signed start's or control's check (workflows/base.py started_since): that the
    run `after` it follows is a run under `workflow_id` (the pair's, or its control id;
    "": the pair's; intent.NO_RUN: none), and, with `listed`, which run there other than
    `own` started after it (from the server's list of workflows; runs since the nonce
    patch take their intent's nonce instead, and ask only the first)."""

    pair: str
    after: str = Field(max_length=128)
    own: str = Field(max_length=128)
    workflow_id: str = Field("", max_length=200)
    listed: bool = True


class NonceInput(BaseModel):
    """A nonce's holder's input (workflows/nonce.py): the workflow id and run id of the
    run that took it, for whoever reads it later (the Web UI shows a workflow's input)."""

    pair: str
    taken_by: str
    run_id: str


class ScheduleLineage(BaseModel):
    """A scheduled run's lineage to check (workflows/base.py prove_scheduled): the run of
    the pair's schedule that started it (its parent, as the server records it)."""

    pair: str
    workflow_id: str = Field(max_length=200)
    run_id: str = Field(max_length=128)


class SideInput(BaseModel):
    pair: str
    side: Side
    # Rules the operator overrode (break-glass, inventory/rules.py); the driver forces
    # only those that may be overridden. Older histories have no such field.
    overrides: list[str] = []


class DsmModeInput(BaseModel):
    pair: str
    side: Side
    mode: Literal["main", "backup"]


class BrowseInput(BaseModel):
    pair: str
    components: list[str] | None = None  # None = all
    hosts: list[str] | None = None  # or the components on these hosts


class BrowseSwitchInput(BaseModel):
    pair: str
    to: Side
    components: list[str] | None = None
    hosts: list[str] | None = None
    overrides: list[str] = []


class ClientInput(BaseModel):
    pair: str
    host: str
    to: Side
    overrides: list[str] = []
    # The restart 2/2 only: when the client's boot after the restart 1/2 happened (the
    # latest it can have been, seconds since the epoch on the worker's clock). A boot
    # later than that is the restart 2/2 done, even when no heartbeat recorded it.
    booted: float | None = None


class BatchRef(BaseModel):
    """A client batch started by an earlier run of the pair's workflow."""

    pair: str
    workflow_id: str


class ClientRebootInput(BaseModel):
    pair: str
    host: str
    round: int  # 1 or 2: a client restarts twice


class ForcedRule(BaseModel):
    """An interlock that refused and was forced by the operator's override."""

    rule: str
    host: str
    refusal: str  # what the interlock said


class RestartBeat(BaseModel):
    """The heartbeat details of an activity that restarts a host: where the restart is
    (operations/reboot.py RestartState) and what the activity did before it, so that a
    retry after a worker crash resumes it instead of doing it again. Sent as one JSON
    object; `read` also takes the positional shape an older worker sent."""

    before: float  # the host's boot before the restart
    sent: bool = False  # the restart went out
    # UWF turned off for the switch (devices.uwf_off_for_switch): "off" while its extra
    # restart runs, "on" from then on (UWF is turned on again with the reconfiguration).
    uwf: Literal["off", "on"] | None = None
    prepared: str | None = None  # what the reconfiguration said, once it is done
    forced: list[ForcedRule] = []  # the interlocks the reconfiguration forced

    def details(self) -> tuple[object, ...]:
        """For activity.heartbeat(*...)."""
        return (self.model_dump(mode="json"),)

    @classmethod
    def read(cls, details: Sequence[Any]) -> RestartBeat | None:
        """The beat a prior attempt left (activity.info().heartbeat_details), None for
        none. An attempt of a worker before this model sent (boot, sent, *carry): carry
        was (message, forced) once reconfigured, then "uwf-off" or "uwf-on" last."""
        if not details:
            return None
        if len(details) == 1 and isinstance(details[0], dict):
            return cls.model_validate(details[0])
        rest = list(details[2:])
        uwf = None
        if rest and rest[-1] in ("uwf-off", "uwf-on"):
            uwf = rest.pop()[len("uwf-") :]
        beat = cls(before=float(details[0]), sent=bool(details[1]), uwf=uwf)
        if len(rest) >= 2:
            beat.prepared = str(rest[0])
            beat.forced = [ForcedRule.model_validate(f) for f in rest[1]]
        return beat


class StepResult(BaseModel):
    """What an activity did, as sentences a person can read."""

    message: str
    details: list[str] = []
    forced: list[ForcedRule] = []
    # A restart: when the host's new boot happened (as ClientInput.booted).
    booted: float | None = None


class InSyncState(BaseModel):
    host: str
    running: bool
    main: Side | None = None


class AllSyncState(BaseModel):
    host: str
    side: Side
    running: bool


class OrphanInput(BaseModel):
    pair: str
    main: Side


class ClipFile(BaseModel):
    name: str
    size: int
    modified: str  # last write time, UTC, ISO 8601


class OrphanClip(BaseModel):
    """One orphan master clip as find-orphans saw it: what an approval covers."""

    clip: str  # relative to V:\\VibrantAVIFiles, e.g. News\\clip-9.vmf
    size: int
    modified: str  # the latest write time of its files
    files: list[ClipFile]


class RefusedClip(BaseModel):
    clip: str
    reason: str


class Orphans(BaseModel):
    """Master clips (.vmf) in the other side's SmartBins folders that the main side lacks."""

    main: Side
    other: Side
    host: str
    clips: list[str]  # paths relative to V:\\VibrantAVIFiles, e.g. News\\clip-9.vmf
    # Each clip's files, sizes and times (older histories: none recorded), and the
    # clips that cannot be purged safely (never deleted), each with its reason.
    found: list[OrphanClip] = []
    refused: list[RefusedClip] = []


class PurgeInput(BaseModel):
    pair: str
    main: Side
    clips: list[str]
    # What was approved, clip by clip (older histories: none; such a purge is refused).
    found: list[OrphanClip] = []


class SyncInput(BaseModel):
    pair: str
    side: Side
    tolerance: int = 0


class AssetCounts(BaseModel):
    counts: dict[str, int | None]


class HostInput(BaseModel):
    pair: str
    host: str


class RunInput(BaseModel):
    pair: str
    running: bool


class SideRunInput(BaseModel):
    pair: str
    side: Side
    running: bool


class NotifyPlan(BaseModel):
    """When a run tells people (inventory `notify`): never where the config file is."""

    console_url: str | None = None
    remind_every: float = 900
    escalate_after: float = 2700


class Capabilities(BaseModel):
    """Which manual steps the inventory lets the service do itself."""

    insync_service: bool = False
    allsync_service: bool = False
    # Who may act (empty: anyone). Older histories have no such field: anyone.
    operators: list[str] = []
    # The on-air blackout windows over the next days (inventory/blackout.py HORIZON),
    # expanded on the worker: a run asks workflows/blackout.py of them, never a rule.
    blackout: list[Window] = []
    # Whom the run tells, and when (the inventory's `notify`, without its config file);
    # None: nobody is told (and older histories have no such field).
    notify: NotifyPlan | None = None
    # Signed acts (docs/operators/signed-acts.md): the operators' public keys by name in
    # lower case, the console's, and whether an unsigned act is refused. Public keys only.
    operator_keys: dict[str, str] = {}
    console_key: str | None = None
    require_signed: bool = False
    # Two people for what cannot be undone (docs/operators/two-person.md): the
    # inventory's `approvals`, by gate id (and break-glass). Older histories: none.
    approvals: dict[str, Approval] = {}


class Notice(BaseModel):
    """One message to an Apprise tag (workflows/notify.py writes it): no secret in it."""

    pair: str
    audience: str
    subject: str
    body: str


class NoticeResult(BaseModel):
    """Delivered, or why not (the error text, never a URL from the config)."""

    delivered: bool
    error: str | None = None


# -- what the pair's activities (activities/pair.py) read of its workflows ----------------
class ClientSwitchResult(BaseModel):
    host: str
    ok: bool
    message: str
    seconds: float
    forced: list[ForcedRule] = []  # interlocks forced by an override


class ClientBatchResult(BaseModel):
    results: list[ClientSwitchResult]


class PairRunState(BaseModel):
    running: bool
    run_id: str | None = None
    workflow: str | None = None
    current_step: str | None = None
    failed_steps: list[str] = []
    failed_clients: list[str] = []  # of the failed client steps


FenceStatus = Literal["waiting", "fenced", "ended"]


class FenceState(BaseModel):
    pair: str
    side: Side
    status: FenceStatus = "waiting"
    reason: str = ""
    started_by: str = ""
    switch_run_id: str = ""
    started_at: str | None = None
    ended_at: str | None = None
    message: str | None = None
    details: list[str] = Field(default_factory=list)
    ended_by: str | None = None
    # Who ended it by hand: proven by whose key, or "unproven" (signed acts); None where
    # the pair has no keys.
    ended_proof: str | None = None


# -- the site check (activities/check.py, workflows/check.py) ---------------------------------
CheckRole = Literal[
    "dsm", "smartbins", "nas-cifs", "nas-ftp", "bridge", "control-point", "browse", "client"
]  # fmt: skip


# The check that says whether a host of each role answers at all (its row in
# workflows/checks.py says which steps a host that does not answer would stop).
ANSWERS: dict[CheckRole, str] = {
    "dsm": "dsm-answers",
    "smartbins": "smartbins-answers",
    "nas-cifs": "nas-answers",
    "nas-ftp": "host-answers",
    "bridge": "host-answers",
    "control-point": "control-point-answers",
    "browse": "browse-answers",
    "client": "client-answers",
}


class CheckTarget(BaseModel):
    """One host to check. `side`: the side it belongs to (its activity runs on that
    side's site queue), None for the hosts both sides share."""

    pair: str
    host: str
    role: CheckRole
    side: Side | None = None


class CheckPlan(BaseModel):
    targets: list[CheckTarget]
    # Bounds the activities: one host's reads, and how long a site worker may take to
    # pick its task up before the host counts as not read.
    operation_timeout: float
    connect_timeout: float
    # The on-air blackout windows over the next days: the check says when the next begins.
    blackout: list[Window] = []


class Finding(BaseModel):
    """What one check of one host found wrong: a problem stops the steps the check
    maps to (workflows/checks.py), a warning is worth knowing."""

    host: str
    check: str
    severity: Literal["problem", "warning"]
    expected: str
    found: str
    fix: str


class HostCheck(BaseModel):
    host: str
    role: CheckRole
    side: Side | None = None
    checks: list[str] = Field(default_factory=list)  # the checks that ran
    findings: list[Finding] = Field(default_factory=list)


class DryRunRead(BaseModel):
    """What a dry run (`amsm start ... --dry-run`) reads besides the pair's status."""

    pair: str
    orphans_for: Side | None = None  # a restore with this main: its orphans, as found now


class DryRunFacts(BaseModel):
    """The inventory's names a dry run's sentences need, and what it read: which of
    each side's iSCSI portals each client reaches now (the probe a client switch makes
    first), and, for a restore, the orphans find-orphans would find."""

    iscsi_port: int
    bridges: dict[Side, str]
    portals: dict[Side, list[str]]
    nas: dict[Side, str]  # each side's CIFS NAS head (AllSync)
    insync_process: str
    # The services the inventory names for InSync and AllSync (None: started by hand).
    insync_service: str | None = None
    allsync_service: str | None = None
    reached: dict[str, dict[Side, list[str]]] = {}  # client -> side -> portals reached
    # client -> side -> the portal it must reach there (its path A: client_prepare's
    # interlock); absent (older runs): the side's portals.
    assigned: dict[str, dict[Side, list[str]]] = {}
    unread: dict[str, str] = {}  # client -> why its portals could not be probed
    # Browse component -> what a switch of it would fail on (a config file or its twin
    # missing, or its files not read), in the driver's words.
    browse_config: dict[str, list[str]] = {}
    orphans: Orphans | None = None
    orphans_error: str | None = None
