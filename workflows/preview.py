"""The dry run's walk (`amsm start KIND ... --dry-run`), pure: a kind's checklist, step by
step, against the pair as read now, changing nothing. Each step says what it would do on
which hosts and, when a precondition (workflows/preconditions.py) or an interlock would
refuse it, the rule and why. What an operation would change is not decided here: the
drivers' own plans (activities/drivers/plans/) are asked, the same functions the
operations execute, so the dry run's sentence, hosts and refusal are the real run's.

The plans are asked of the devices as the run would leave them by then (after
stop-replication replication is stopped, after stop-browse Browse is), which is what the
run's own steps would find; a host that does not answer now refuses the steps that act
on it, named with the check of `amsm check` that would find it (workflows/checks.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import BaseModel

from activities.drivers import refusals
from activities.drivers.plans import Plan
from activities.drivers.plans import browse as browse_plans
from activities.drivers.plans import clients as client_plans
from activities.drivers.plans import dsm as dsm_plans
from activities.drivers.plans import smartbins as smartbins_plans
from activities.drivers.plans import sync_tools as sync_plans
from activities.models import Capabilities, DryRunFacts
from inventory.models import Side, other
from inventory.status import PairStatus
from workflows import outcomes, preconditions
from workflows.kinds import KINDS
from workflows.models import Checklist, StepState
from workflows.restore import listing
from workflows.steps import NOT_UNPLANNED, lost_side_steps

# The rule a precondition of the run refuses by (its sentence says which).
PRECONDITION = "precondition"
# A Browse component's config files (the check of `amsm check` that finds it missing).
BROWSE_CONFIG = "browse-config"
# The volumes' listing a restore's find-orphans reads (fails closed: never "no orphans").
MEDIA_LISTING = "media-listing"
UNLISTED = "the orphans could not be listed now (see find-orphans)"


class Refused(BaseModel):
    rule: str  # an interlock's rule (inventory/rules.py), a check, or PRECONDITION
    why: str


class PlannedChange(BaseModel):
    """One change of a driver's plan (activities/drivers/plans/): its host, and the
    sentence the operation answers once it made it."""

    host: str
    done: str


class DryRunStep(BaseModel):
    id: str
    would: str  # what the step would do, on which hosts, in the operator's words
    refused: Refused | None = None
    hosts: list[str] = []  # the hosts it would change
    items: list[str] = []  # a restore's orphans, all of them (the text shows the first few)
    # The drivers' plans' changes (what the real run's operations answer, host by host).
    changes: list[PlannedChange] = []


def _refused(plan: Plan) -> Refused | None:
    """What refuses a plan, as the driver checks it: its interlock, then what blocks it."""
    if plan.refusal is not None:
        return Refused(rule=plan.refusal.rule, why=plan.refusal.refusal)
    if plan.blocked is not None:
        return Refused(rule=plan.blocked.name, why=plan.blocked.why)
    return None


def _from_plan(plan: Plan, refused: Refused | None = None) -> DryRunStep:
    """A step of the dry run that a driver's plan says: its sentence, its hosts, its
    refusal (unless one found first, `refused`), its changes."""
    return DryRunStep(
        id="",
        would=plan.would,
        refused=refused or _refused(plan),
        hosts=plan.hosts,
        changes=[PlannedChange(host=c.host, done=c.done) for c in plan.changes],
    )


class DryRunResult(BaseModel):
    checklist: Checklist  # what `amsm show` would show now, every step pending
    steps: list[DryRunStep]
    refused: str | None = None  # the run's own refusal, as `amsm start` would print it
    # When the next on-air blackout window begins (docs/operators/blackout.md).
    next_blackout: str | None = None

    @property
    def would_refuse(self) -> bool:
        return self.refused is not None or any(s.refused for s in self.steps)


@dataclass
class Dsm:
    host: str
    reachable: bool
    error: str | None
    mode: str | None
    replication: str | None
    role: str | None
    assets: int | None


@dataclass
class Sim:
    """The devices as the run would leave them, step by step (never written back)."""

    dsm: dict[Side, Dsm]
    browse_running: dict[str, list[str]]  # component -> its services not stopped
    browse_side: dict[str, Side | None]
    insync_running: bool | None
    insync_main: Side | None
    allsync_on: set[Side] = field(default_factory=set)


def _assets(count: int | None) -> str:
    # None: the DSM's database is not online (a backup restoring) or it did not answer.
    return "not readable" if count is None else str(count)


def _sim(st: PairStatus) -> Sim:
    return Sim(
        dsm={
            s: Dsm(d.host, d.reachable, d.error, d.mode, d.replication, d.role, d.asset_count)
            for s, d in st.dsm.items()
        },
        browse_running={
            b.name: [x.name for x in b.services if x.status != "Stopped"] for b in st.browse
        },
        browse_side={b.name: b.side for b in st.browse},
        insync_running=st.insync.running,
        insync_main=st.insync.main,
        allsync_on=set(st.allsync.running_on),
    )


class Walk:
    """One dry run: `step(step id)` says what the step would do and what would refuse
    it, and moves the simulated devices on as the step would leave them."""

    def __init__(
        self,
        kind: str,
        a: Side,
        b: Side,
        status: PairStatus,
        facts: DryRunFacts,
        caps: Capabilities,
        *,
        unplanned: bool = False,
        pilots: list[str] | None = None,
        tolerance: int = 0,
    ) -> None:
        self.kind, self.a, self.b = kind, a, b
        self.st, self.facts, self.caps = status, facts, caps
        self.sim = _sim(status)
        self.unplanned = unplanned
        self.pilots = pilots or []
        self.tolerance = tolerance
        self.moved: set[str] = set()  # clients an earlier step would already move
        self.lost = set(lost_side_steps(a)) if unplanned else set()

    # -- the steps -------------------------------------------------------------------------
    def step(self, step_id: str) -> DryRunStep:
        a, b = self.a, self.b
        la, lb = a.lower(), b.lower()
        handlers: dict[str, Callable[[], DryRunStep]] = {
            "stop-replication": self.stop_replication,
            f"dsm-{la}-backup": lambda: self.dsm_mode(a, "backup"),
            f"dsm-{lb}-backup": lambda: self.dsm_mode(b, "backup"),
            f"dsm-{la}-main": lambda: self.dsm_mode(a, "main"),
            f"dsm-{lb}-main": lambda: self.dsm_mode(b, "main"),
            f"smartbins-{la}-backup": lambda: self.smartbins(a, "backup"),
            f"smartbins-{lb}-backup": lambda: self.smartbins(b, "backup"),
            f"smartbins-{la}-main": lambda: self.smartbins(a, "main"),
            f"smartbins-{lb}-main": lambda: self.smartbins(b, "main"),
            "stop-browse": lambda: self.browse_run(False),
            "switch-browse": self.browse_switch,
            "start-browse": lambda: self.browse_run(True),
            f"browse-to-{la}": lambda: self.browse_move(a),
            "stop-insync": lambda: self.insync_run(False),
            "start-insync": lambda: self.insync_run(True),
            f"insync-{la}-main": lambda: self.insync_main(a),
            f"insync-{lb}-main": lambda: self.insync_main(b),
            "stop-allsync": lambda: self.allsync_run(a, False, checked=self.unplanned),
            "start-allsync": lambda: self.allsync_run(self.main_after, True),
            "switch-clients": self.switch_clients,
            "switch-pilots": self.switch_pilots,
            "move-editors": self.move_editors,
            "approve-overwrite": self.approve_overwrite,
            "start-replication": self.start_replication,
            "find-orphans": self.find_orphans,
            "approve-purge": self.approve_purge,
            "purge-orphans": self.purge_orphans,
        }
        if step_id in handlers:
            out = handlers[step_id]()
        else:
            title = self._title(step_id)
            out = DryRunStep(id=step_id, would=f"would wait for you: {title}")
        out.id = step_id
        if step_id in self.lost:
            out.would += (
                f" (tried once: {a} may be lost; a failure skips the step as side lost "
                "and starts the fence)"
            )
            # On a lost side, a host that does not answer is what the run expects.
            if out.refused is not None and out.refused.rule.endswith("-answers"):
                out.would += f"; {a} does not answer now: {out.refused.why}"
                out.refused = None
        return out

    @property
    def main_after(self) -> Side:
        """The side that is main at the end (AllSync starts on its NAS head)."""
        return self.b if KINDS[self.kind].side == "to" else self.a

    def _title(self, step_id: str) -> str:
        side = self.b if KINDS[self.kind].side == "to" else self.a
        return next(s.title for s in KINDS[self.kind].steps(side) if s.id == step_id)

    # DSMs --------------------------------------------------------------------------------
    def _dsm_down(self, side: Side) -> Refused | None:
        d = self.sim.dsm[side]
        if d.reachable and d.mode is not None:
            return None
        return Refused(rule="dsm-answers", why=f"DSM {d.host} does not answer: {d.error}")

    def stop_replication(self) -> DryRunStep:
        a, b = self.a, self.b
        d, peer = self.sim.dsm[a], self.sim.dsm[b]
        down = self._dsm_down(a)
        stopped: list[Dsm] = []
        if down is not None:
            out = DryRunStep(
                id="", would=f"would stop replication on DSM {d.host}", refused=down, hosts=[d.host]
            )
        else:
            plan = dsm_plans.stop_replication(
                d.host, d.replication, d.role, peer.host, peer.replication, peer.role
            )
            out = _from_plan(plan)
            # What the step leaves: A's replication stopped, and B's where the plan stops
            # it (its backup job; a job of B's running otherwise stays, as in the run).
            stopped = [d] + ([peer] if peer.host in plan.hosts else [])
        if self.unplanned:
            out.would += f"; then stop {b}'s own replication on DSM {peer.host} if {a} is lost"
            # With A lost, B's own replication stopped (whatever its role).
            if peer not in stopped:
                stopped.append(peer)
        for x in stopped:
            x.replication, x.role = "stopped", "none"
        return out

    def dsm_mode(self, side: Side, mode: str) -> DryRunStep:
        d = self.sim.dsm[side]
        down = self._dsm_down(side)
        if down is not None:
            return DryRunStep(id="", would=f"would set DSM {d.host} to {mode}", refused=down)
        plan = dsm_plans.set_mode(d.host, mode, d.mode, d.replication, d.role)
        d.mode = mode
        return _from_plan(plan)

    def start_replication(self) -> DryRunStep:
        m = self.main_after
        o = other(m)
        d, peer = self.sim.dsm[m], self.sim.dsm[o]
        down = self._dsm_down(m) or self._dsm_down(o)
        wait = ""
        if "asset_tolerance" in KINDS[self.kind].input.model_fields:
            counts = ", ".join(f"{x.host} {_assets(x.assets)}" for x in (d, peer))
            wait = f" and wait until the asset counts agree within {self.tolerance} (now {counts})"
        if down is not None:
            return DryRunStep(
                id="",
                would=f"would start replication from DSM {d.host} to {peer.host}{wait}",
                refused=down,
            )
        plan = dsm_plans.start_replication(
            d.host, d.mode, d.replication, d.role, peer.host, peer.mode, peer.replication, peer.role
        )
        out = _from_plan(plan)
        out.would += wait
        return out

    def approve_overwrite(self) -> DryRunStep:
        m = self.main_after
        counts = ", ".join(
            f"{self.sim.dsm[s].host} {_assets(self.sim.dsm[s].assets)}" for s in (m, other(m))
        )
        return DryRunStep(
            id="",
            would=f"would wait for your approval: {self._title('approve-overwrite')}; "
            f"asset counts now: {counts}",
        )

    # SmartBins -----------------------------------------------------------------------------
    def smartbins(self, side: Side, mode: str) -> DryRunStep:
        servers = [s for s in self.st.smartbins if s.side == side]
        down = [s for s in servers if not s.reachable]
        hosts = [s.host for s in servers]
        if down:
            word = "main" if mode == "main" else "backup (pseudo on the PseudoSmartBins host)"
            why = "; ".join(f"SmartBins {s.host} does not answer: {s.error}" for s in down)
            return DryRunStep(
                id="",
                would=f"would set {side}'s SmartBins {', '.join(hosts)} to {word}",
                refused=Refused(rule="smartbins-answers", why=why),
                hosts=hosts,
            )
        read = [smartbins_plans.Server(s.host, s.running, s.mode, s.pseudo_host) for s in servers]
        plan = (smartbins_plans.side_main if mode == "main" else smartbins_plans.side_backup)(read)
        return _from_plan(plan)

    # Browse --------------------------------------------------------------------------------
    def _browse_down(self) -> Refused | None:
        down = [b for b in self.st.browse if not b.reachable]
        if not down:
            return None
        why = "; ".join(f"Browse {b.name} on {b.host} does not answer: {b.error}" for b in down)
        return Refused(rule="browse-answers", why=why)

    def browse_run(self, run: bool, on: Side | None = None) -> DryRunStep:
        plan = Plan()
        for b in self.st.browse:
            up = self.sim.browse_running[b.name]
            now: dict[str, str | None] = {
                x.name: ("Running" if x.name in up else "Stopped") if b.reachable else None
                for x in b.services
            }
            order = [x.name for x in b.services]
            of = browse_plans.start if run else browse_plans.stop
            plan = plan.then(of(b.name, b.host, now, order))
            self.sim.browse_running[b.name] = order if run else []
        out = _from_plan(plan, self._browse_down())
        if run:
            out.would += f"; Browse Active on {on or self.b}"
        return out

    def browse_switch(self, to: Side | None = None) -> DryRunStep:
        to = to or self.b
        comps = self.st.browse
        plan = Plan()
        broken: list[str] = []
        for b in comps:
            now = self.sim.browse_side[b.name]
            plan = plan.then(
                browse_plans.switch(
                    b.name, b.host, self.sim.browse_running[b.name], now, to, b.side
                )
            )
            if now != to:
                # The swap needs each config file and its twin (the driver fails without them).
                broken += self.facts.browse_config.get(b.name, [])
            self.sim.browse_side[b.name] = to
        refused = self._browse_down()
        if refused is None and broken and plan.refusal is None:
            refused = Refused(rule=BROWSE_CONFIG, why="; ".join(broken))
        return _from_plan(plan, refused)

    def browse_move(self, to: Side) -> DryRunStep:
        there = browse_plans.already_active(to, [(b.side, b.running) for b in self.st.browse])
        if there is not None:
            return _from_plan(there)
        stop = self.browse_run(False)
        switch = self.browse_switch(to)
        start = self.browse_run(True, on=to)
        return DryRunStep(
            id="",
            would=f"Browse is not Active on {to}: {stop.would}; {switch.would}; {start.would}",
            refused=stop.refused or switch.refused or start.refused,
            hosts=list(dict.fromkeys(stop.hosts + switch.hosts + start.hosts)),
        )

    # InSync / AllSync ------------------------------------------------------------------------
    def _manual(self, what: str, host: str) -> str:
        return f"would wait for you to {what}, then check it on {host}"

    def insync_run(self, run: bool) -> DryRunStep:
        i = self.st.insync
        verb = "start" if run else "stop"
        if not i.reachable:
            refused = Refused(
                rule="control-point-answers", why=f"{i.host} does not answer: {i.error}"
            )
        else:
            refused = None
        now = "running" if self.sim.insync_running else "stopped"
        service = self.caps.insync_service
        was = self.sim.insync_running
        self.sim.insync_running = run
        if service:
            plan = sync_plans.tool_set("InSync", i.host, self.facts.insync_service or "", was, run)
            return _from_plan(plan, refused)
        would = self._manual(f"{verb} InSync", i.host) + f" (it is {now} now)"
        return DryRunStep(id="", would=would, refused=refused)

    def insync_main(self, main: Side) -> DryRunStep:
        i = self.st.insync
        if not i.reachable:
            return DryRunStep(
                id="",
                would=f"would set InSync on {i.host} to copy {main} -> {other(main)}",
                refused=Refused(
                    rule="control-point-answers", why=f"{i.host} does not answer: {i.error}"
                ),
            )
        plan = sync_plans.insync_set_main(
            i.host,
            self.facts.insync_process,
            bool(self.sim.insync_running),
            self.sim.insync_main,
            main,
            None,  # Insync.cfg is not read here: the operation reads it then
        )
        self.sim.insync_main = main
        return _from_plan(plan)

    def allsync_run(self, side: Side, run: bool, checked: bool = False) -> DryRunStep:
        """`checked`: an unplanned switch reads AllSync on the lost side itself, and
        fails the step while it still runs (it does not wait for the operator)."""
        host = self.facts.nas[side]
        verb = "start" if run else "stop"
        err = self.st.allsync.errors.get(host)
        refused = Refused(rule="nas-answers", why=f"{host} does not answer: {err}") if err else None
        on = side in self.sim.allsync_on
        now = "running" if on else "not running"
        if self.caps.allsync_service:
            plan = sync_plans.tool_set("AllSync", host, self.facts.allsync_service or "", on, run)
            (self.sim.allsync_on.add if run else self.sim.allsync_on.discard)(side)
            return _from_plan(plan, refused)
        if checked:
            would = f"would check that AllSync is not running on {host} (it is {now} now)"
        else:
            would = self._manual(f"{verb} AllSync", host) + f" (it is {now} now)"
        (self.sim.allsync_on.add if run else self.sim.allsync_on.discard)(side)
        return DryRunStep(id="", would=would, refused=refused)

    # Clients -------------------------------------------------------------------------------
    def _move(self, hosts: list[str], to: Side, what: str) -> DryRunStep:
        f = self.facts
        refused: list[str] = []
        names: list[str] = []
        unread: list[str] = []
        for h in hosts:
            if h in f.unread:
                # Fail closed: a client whose reach is not known is not taken as reaching.
                refused.append(f"{h}: its portals could not be probed: {f.unread[h]}")
                unread.append(h)
                continue
            reached = f.reached.get(h, {}).get(to, [])
            own = f.assigned.get(h, {}).get(to, f.portals[to])
            no = refusals.client_without_bridge(h, to, f.bridges[to], own, f.iscsi_port, reached)
            if no is not None:
                refused.append(no.refusal)
                names.append(h)
        self.moved.update(x.lower() for x in hosts)
        frm = other(to)
        if not hosts:
            would = outcomes.NO_CLIENTS
        else:
            would = f"would switch {len(hosts)} {what}: {listing(hosts)} from {frm} to {to}"
        would += client_plans.side_unknown(self._clients())
        if names:
            would += f"; refused for {len(names)}: {listing(names)} (cannot reach {to}'s portal)"
        if unread:
            would += f"; not probed: {listing(unread)}"
        rule = refusals.RULE_CLIENT_BRIDGE if names else "client-answers"
        return DryRunStep(
            id="",
            would=would,
            refused=Refused(rule=rule, why="; ".join(refused)) if refused else None,
            hosts=list(hosts),
        )

    def switch_clients(self) -> DryRunStep:
        to = self.main_after
        frm = other(to)
        hosts = client_plans.to_switch(self._clients(), frm, self.moved)
        return self._move(hosts, to, "client" if len(hosts) == 1 else "clients")

    def _clients(self) -> list[client_plans.Client]:
        return [(c.host, c.side, c.status) for c in self.st.clients]

    def switch_pilots(self) -> DryRunStep:
        by_name = {c.host.lower(): c.host for c in self.st.clients}
        hosts = [by_name.get(p.lower(), p) for p in self.pilots]
        return self._move(hosts, self.b, "pilot" if len(hosts) == 1 else "pilots")

    def move_editors(self) -> DryRunStep:
        return DryRunStep(
            id="",
            would="would wait for you to name the clients that change side (amsm confirm RUN "
            "move-editors --client HOST ...; none: a plain confirm), then move each to the "
            "side it is not on",
        )

    # Restore's orphans -----------------------------------------------------------------------
    def find_orphans(self) -> DryRunStep:
        f = self.facts
        o = self.b
        if f.orphans is None:
            why = f.orphans_error or "the volumes were not listed"
            return DryRunStep(
                id="",
                would=f"would list master clips on {o}'s volume that {self.a} lacks",
                refused=Refused(rule=MEDIA_LISTING, why=why),
            )
        found = f.orphans
        kept = [f"{r.clip} ({r.reason})" for r in found.refused]
        would = (
            f"would find {len(found.clips)} orphan master clip(s) on {o} ({found.host}): "
            f"{listing(found.clips)}"
            if found.clips
            else f"would find no orphan master clips on {o} to delete"
        )
        if kept:
            would += f"; {len(kept)} refused, never deleted: {listing(kept)}"
        return DryRunStep(id="", would=would, items=list(found.clips))

    def approve_purge(self) -> DryRunStep:
        found = self.facts.orphans
        if found is None:
            return DryRunStep(id="", would=f"would wait for your approval: {UNLISTED}")
        if not found.clips:
            return DryRunStep(id="", would=outcomes.NO_ORPHANS["approve-purge"])
        size = sum(r.size for r in found.found)
        return DryRunStep(
            id="",
            would=f"would wait for your approval: {len(found.clips)} clip(s) would be deleted "
            f"on {self.b} only: {listing(found.clips)} ({size:,} bytes; each only if unchanged)",
            items=list(found.clips),
        )

    def purge_orphans(self) -> DryRunStep:
        found = self.facts.orphans
        if found is None:
            return DryRunStep(id="", would=f"would delete the approved orphans: {UNLISTED}")
        if not found.clips:
            return DryRunStep(id="", would=outcomes.NO_ORPHANS["purge-orphans"])
        return DryRunStep(
            id="",
            would=f"would delete {len(found.clips)} clip(s) on {self.b}'s volume ({found.host}), "
            "each only while unchanged since the approval",
            hosts=[found.host],
            items=list(found.clips),
        )


def run_refusal(
    kind: str,
    inp: BaseModel,
    status: PairStatus,
    caps: Capabilities,
    fences_waiting: list[str],
) -> str | None:
    """Why the run itself would be refused at its start, as `amsm start` prints it."""
    k = KINDS[kind]
    side: Side = getattr(inp, k.side)
    unplanned = bool(getattr(inp, "unplanned", False))
    name = k.what(side, unplanned)
    who = getattr(inp, "initiator", "unknown")
    ops = set(caps.operators)
    if ops and who.lower() not in ops:
        return f"{kind} refused: {who} is not an operator of pair {status.pair}"
    fence = preconditions.under_fence(k.makes_main(side), fences_waiting)
    if fence:
        return f"{kind} refused: {fence}"
    why = k.refusal(
        status,
        side,
        unplanned,
        getattr(inp, "reason", None),
        getattr(inp, "pilots", []),
    )
    return f"{name} refused: {why}" if why else None


def dry_run(
    kind: str,
    inp: BaseModel,
    status: PairStatus,
    facts: DryRunFacts,
    caps: Capabilities,
    fences_waiting: list[str],
    run_id: str = "",
    workflow_id: str = "",
) -> DryRunResult:
    """The kind's checklist walked against `status` and `facts`: every step pending (or
    passed over, as the run would pass it over), each with what it would do."""
    k = KINDS[kind]
    side: Side = getattr(inp, k.side)
    a, b = k.sides(side)
    unplanned = bool(getattr(inp, "unplanned", False))
    title = k.title(a, b, inp)
    if unplanned:
        title = f"Unplanned switch {a} -> {b} ({status.pair}): {a} lost"
    checklist = Checklist(
        workflow=kind,
        pair=status.pair,
        title=f"DRY RUN (nothing changed): {title}",
        run_id=run_id,
        workflow_id=workflow_id,
        initiator=getattr(inp, "initiator", "unknown"),
        state="completed",
        started_at=status.read_at,
        unplanned_reason=getattr(inp, "reason", None) if unplanned else None,
        steps=[StepState(id=s.id, kind=s.kind, title=s.title) for s in k.steps(side)],
    )
    refused = run_refusal(kind, inp, status, caps, fences_waiting)
    walk = Walk(
        kind,
        a,
        b,
        status,
        facts,
        caps,
        unplanned=unplanned,
        pilots=list(getattr(inp, "pilots", [])),
        tolerance=int(getattr(inp, "asset_tolerance", 0)),
    )
    steps: list[DryRunStep] = []
    no_orphans = k.reads_orphans and (facts.orphans is not None and not facts.orphans.clips)
    for s in checklist.steps:
        passed = None
        if unplanned and s.id in NOT_UNPLANNED:
            passed = outcomes.not_unplanned_note(a, b)
        elif no_orphans and s.id in outcomes.NO_ORPHANS:
            passed = outcomes.NO_ORPHANS[s.id]
        if passed is not None:
            s.status, s.outcome, s.note = "skipped", "passed-over", passed
            steps.append(DryRunStep(id=s.id, would=f"would pass it over: {passed}"))
            continue
        steps.append(walk.step(s.id))
    if refused is not None:
        for d in steps:
            d.refused = Refused(rule=PRECONDITION, why=refused)
    n = sum(1 for d in steps if d.refused)
    checklist.message = (
        f"would be refused: {refused}"
        if refused
        else f"{n} step(s) would be refused"
        if n
        else f"nothing would be refused (pair read {status.read_at})"
    )
    return DryRunResult(checklist=checklist, steps=steps, refused=refused)
