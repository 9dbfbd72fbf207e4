"""The activities: one thin function per device operation the workflows need.

An instance holds the inventory and resolves credentials on the worker; inputs
and results carry host names and sentences, never a secret.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from temporalio import activity

from activities.drivers.credentials import CredentialStore
from activities.drivers.dsm import DsmDriver
from activities.drivers.errors import CommandFailed, DeviceError, Unreachable
from activities.drivers.facts import browse as browse_facts
from activities.drivers.facts import clients as clients_facts
from activities.drivers.facts import media as media_facts
from activities.drivers.facts import smartbins as smartbins_facts
from activities.drivers.facts import sync_tools as sync_tools_facts
from activities.drivers.facts import windows as windows_facts
from activities.drivers.host import HostDriver
from activities.drivers.interlocks import Overrides
from activities.drivers.operations import browse as browse_ops
from activities.drivers.operations import clients as clients_ops
from activities.drivers.operations import media as media_ops
from activities.drivers.operations import smartbins as smartbins_ops
from activities.drivers.operations import sync_tools as sync_tools_ops
from activities.drivers.operations import windows as windows_ops
from activities.drivers.ssh import SshHostDriver
from activities.drivers.winrm import WinRmHostDriver
from activities.models import (
    AllSyncState,
    AssetCounts,
    BrowseInput,
    BrowseSwitchInput,
    Capabilities,
    ClientInput,
    ClientRebootInput,
    ClipFile,
    DsmModeInput,
    ForcedRule,
    HostInput,
    InSyncState,
    OrphanClip,
    OrphanInput,
    Orphans,
    PairRef,
    PurgeInput,
    RefusedClip,
    RunInput,
    SideInput,
    SideRunInput,
    StepResult,
    SyncInput,
)
from activities.support import device_activity, heartbeating, translate_errors
from inventory.models import (
    SIDES,
    BrowseComponent,
    Host,
    Inventory,
    Side,
    SwitchableClient,
    Timing,
    other,
)
from inventory.status import (
    AllSyncStatus,
    BrowseStatus,
    ClientStatus,
    InSyncStatus,
    PairStatus,
    SmartBinsStatus,
)

T = TypeVar("T")


def forced(ov: Overrides) -> list[ForcedRule]:
    """The interlocks an operation forced, for its result (and so the history)."""
    for f in ov.forced:
        activity.logger.warning("%s: rule %s overridden: %s", f.host, f.rule, f.refusal)
    return [ForcedRule(rule=f.rule, host=f.host, refusal=f.refusal) for f in ov.forced]


class DeviceActivities:
    def __init__(self, inventory: Inventory, inventory_path: str | Path) -> None:
        self.inv = inventory
        self.creds = CredentialStore(inventory, inventory_path)
        self._probe_limit = asyncio.Semaphore(64)

    # -- wiring --------------------------------------------------------------------------
    def host(self, host: Host) -> HostDriver:
        t = self.inv.timing
        if host.transport == "winrm":
            ca = host.winrm_settings.ca_file
            return WinRmHostDriver(
                host,
                self.creds.resolve(host.credentials),
                self.creds.resolve_file(ca) if ca else None,
                connect_timeout=t.connect_timeout,
                timeout=t.operation_timeout,
            )
        return SshHostDriver(
            host,
            self.creds.resolve(host.credentials),
            self.creds.known_hosts,
            connect_timeout=t.connect_timeout,
            timeout=t.operation_timeout,
        )

    def dsm(self, side: Side) -> DsmDriver:
        d = self.inv.sides[side].dsm
        secret = self.creds.resolve(d.credentials) if d.credentials else None
        return DsmDriver(d, side, secret, timeout=self.inv.timing.connect_timeout)

    def _check_pair(self, pair: str) -> None:
        if pair != self.inv.pair:
            raise CommandFailed(
                "worker", f"this worker serves pair {self.inv.pair!r}, not {pair!r}"
            )

    def _client(self, name: str) -> SwitchableClient:
        try:
            return self.inv.client(name)
        except KeyError:
            raise CommandFailed(
                "worker", f"{name} is not a switchable client in the inventory"
            ) from None

    def _components(
        self, names: list[str] | None, hosts: list[str] | None = None
    ) -> list[BrowseComponent]:
        if hosts:
            by_host = [
                b for b in self.inv.browse if b.host.host.lower() in {h.lower() for h in hosts}
            ]
            found = {b.host.host.lower() for b in by_host}
            unknown = [h for h in hosts if h.lower() not in found]
            if unknown:
                on = sorted({b.host.host for b in self.inv.browse})
                raise CommandFailed(
                    "worker",
                    f"no Browse component on {', '.join(unknown)}; Browse hosts: {', '.join(on)}",
                )
            return by_host
        if names is None:
            return list(self.inv.browse)
        known = {b.name: b for b in self.inv.browse}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise CommandFailed(
                "worker",
                f"unknown Browse component(s) {', '.join(unknown)}; known: {', '.join(known)}",
            )
        return [known[n] for n in names]

    async def _limited(self, coro: Awaitable[T]) -> T:
        async with self._probe_limit:
            return await coro

    # -- probes ------------------------------------------------------------------------------
    @activity.defn(name="get_timing")
    async def get_timing(self, inp: PairRef) -> Timing:
        """The worker's timing settings, so workflows size their timeouts from the inventory."""
        self._check_pair(inp.pair)
        return self.inv.timing

    @activity.defn(name="probe_pair")
    @translate_errors
    async def probe_pair(self, inp: PairRef) -> PairStatus:
        """Read every device of the pair in parallel. Unreachable devices are reported, not raised."""
        self._check_pair(inp.pair)
        inv = self.inv

        async def smartbins(side: Side, i: int) -> SmartBinsStatus:
            s = inv.sides[side].smartbins[i]
            st = SmartBinsStatus(host=s.host, side=side, pseudo_host=s.pseudo_host)
            try:
                st.running, st.mode = await smartbins_facts.smartbins_facts(
                    self.host(s), inv.devices
                )
            except DeviceError as e:
                st.reachable, st.error = False, str(e)
            return st

        async def browse(c: BrowseComponent) -> BrowseStatus:
            st = BrowseStatus(name=c.name, role=c.role, host=c.host.host)
            try:
                f = await browse_facts.browse_facts(self.host(c.host), c, inv)
                st.services, st.side, st.running = f.services, f.side, f.running
            except DeviceError as e:
                st.reachable, st.error = False, str(e)
            return st

        async def client(i: int) -> ClientStatus:
            c = inv.clients[i]
            try:
                return await clients_facts.client_facts(self.host(c), c, inv)
            except DeviceError as e:
                return ClientStatus(host=c.host, kind=c.kind, status="unreachable", error=str(e))

        async def insync() -> InSyncStatus:
            cp = inv.control_point
            st = InSyncStatus(host=cp.host)
            try:
                st.running, st.main = await sync_tools_facts.insync_facts(
                    self.host(cp), inv.devices
                )
            except DeviceError as e:
                st.reachable, st.error = False, str(e)
            return st

        async def allsync(side: Side) -> tuple[Side, bool | None, str | None]:
            nas = inv.sides[side].nas.cifs
            try:
                return (
                    side,
                    await windows_facts.process_running(
                        self.host(nas), inv.devices.allsync_process
                    ),
                    None,
                )
            except DeviceError as e:
                return side, None, str(e)

        dsm_x, dsm_y = await asyncio.gather(*(asyncio.to_thread(self.dsm(s).status) for s in SIDES))
        sb = [
            self._limited(smartbins(side, i))
            for side in SIDES
            for i in range(len(inv.sides[side].smartbins))
        ]
        results = await asyncio.gather(
            asyncio.gather(*sb),
            asyncio.gather(*(self._limited(browse(c)) for c in inv.browse)),
            asyncio.gather(*(self._limited(client(i)) for i in range(len(inv.clients)))),
            insync(),
            asyncio.gather(*(allsync(s) for s in SIDES)),
        )
        sb_st, browse_st, client_st, insync_st, allsync_raw = results
        allsync_st = AllSyncStatus(
            running_on=[s for s, running, _ in allsync_raw if running],
            errors={inv.sides[s].nas.cifs.host: err for s, _, err in allsync_raw if err},
        )
        return PairStatus(
            pair=inv.pair,
            read_at=datetime.now(UTC).isoformat(timespec="seconds"),
            dsm={"X": dsm_x, "Y": dsm_y},
            smartbins=list(sb_st),
            browse=list(browse_st),
            clients=list(client_st),
            insync=insync_st,
            allsync=allsync_st,
        )

    # -- DSM -------------------------------------------------------------------------------
    async def _wait(self, what: str, check: Callable[[], Awaitable[bool]], host: str) -> None:
        deadline = time.monotonic() + self.inv.timing.replication_timeout
        while not await check():
            if time.monotonic() > deadline:
                raise CommandFailed(
                    host, f"{what}: not reached within {self.inv.timing.replication_timeout:.0f} s"
                )
            await asyncio.sleep(min(0.5, self.inv.timing.poll_interval))

    @activity.defn(name="dsm_stop_replication")
    @device_activity
    async def dsm_stop_replication(self, inp: SideInput) -> StepResult:
        """Stop replication on the side's DSM and its peer's backup replication; wait until
        both DSMs report it stopped, each read from itself."""
        self._check_pair(inp.pair)
        me, peer = self.dsm(inp.side), self.dsm(other(inp.side))
        msg = await asyncio.to_thread(me.stop_replication, peer)

        async def both_stopped() -> bool:
            a, b = await asyncio.gather(asyncio.to_thread(me.read), asyncio.to_thread(peer.read))
            return a.replication != "running" and b.replication != "running"

        await self._wait("both DSMs report replication stopped", both_stopped, peer.name)
        return StepResult(message=f"{msg}; {peer.name} reports stopped too")

    @activity.defn(name="dsm_set_mode")
    @device_activity
    async def dsm_set_mode(self, inp: DsmModeInput) -> StepResult:
        self._check_pair(inp.pair)
        return StepResult(message=await asyncio.to_thread(self.dsm(inp.side).set_mode, inp.mode))

    @activity.defn(name="dsm_start_replication")
    @device_activity
    async def dsm_start_replication(self, inp: SideInput) -> StepResult:
        """Start replication from the side's DSM (its master, then the peer's backup); wait
        until the peer itself reports running as replication backup."""
        self._check_pair(inp.pair)
        me, peer = self.dsm(inp.side), self.dsm(other(inp.side))
        msg = await asyncio.to_thread(me.start_replication, peer, Overrides.of(inp.overrides))

        settle = self.inv.timing.replication_settle
        held_since: float | None = None

        async def peer_backup() -> bool:
            nonlocal held_since
            a, b = await asyncio.gather(asyncio.to_thread(me.read), asyncio.to_thread(peer.read))
            if a.replication == "failed":
                raise CommandFailed(me.name, "replication failed")
            both = (a.replication, a.role, b.replication, b.role)
            if both != ("running", "master", "running", "backup"):
                held_since = None
                return False
            # Each DSM's job reports running the moment it starts; one that fails in
            # its first step has to be seen failing, so the state must hold a while.
            held_since = time.monotonic() if held_since is None else held_since
            return time.monotonic() - held_since >= settle

        await self._wait(f"{peer.name} running as replication backup", peer_backup, peer.name)
        a, b = await asyncio.gather(asyncio.to_thread(me.read), asyncio.to_thread(peer.read))
        return StepResult(
            message=f"{msg}; asset counts {me.name} {a.asset_count}, {peer.name} {b.asset_count}"
        )

    # -- SmartBins ---------------------------------------------------------------------------
    @activity.defn(name="smartbins_set_main")
    @device_activity
    async def smartbins_set_main(self, inp: SideInput) -> StepResult:
        """Every SmartBins server of the side: stop, normal mode, start."""
        self._check_pair(inp.pair)
        servers = self.inv.sides[inp.side].smartbins
        msgs = await asyncio.gather(
            *(
                smartbins_ops.smartbins_set(self.host(s), self.inv.devices, "Normal", True)
                for s in servers
            )
        )
        return StepResult(message=f"SmartBins on {inp.side} main", details=list(msgs))

    @activity.defn(name="smartbins_set_backup")
    @device_activity
    async def smartbins_set_backup(self, inp: SideInput) -> StepResult:
        """All stopped; the side's PseudoSmartBins host in pseudo mode and started."""
        self._check_pair(inp.pair)
        return await self.smartbins_backup(inp.side)

    async def smartbins_backup(self, side: Side) -> StepResult:
        servers = self.inv.sides[side].smartbins
        # Stop the others first so two servers never run in pseudo mode together.
        msgs = list(
            await asyncio.gather(
                *(
                    smartbins_ops.smartbins_set(self.host(s), self.inv.devices, "Normal", False)
                    for s in servers
                    if not s.pseudo_host
                )
            )
        )
        pseudo = self.inv.sides[side].pseudo_host
        msgs.append(
            await smartbins_ops.smartbins_set(self.host(pseudo), self.inv.devices, "Pseudo", True)
        )
        return StepResult(
            message=f"SmartBins on {side} backup (pseudo on {pseudo.host})", details=msgs
        )

    # -- Browse ----------------------------------------------------------------------------
    async def _browse_stop(self, comps: list[BrowseComponent]) -> StepResult:
        msgs = await asyncio.gather(*(browse_ops.browse_stop(self.host(c.host), c) for c in comps))
        return StepResult(message=f"{len(comps)} Browse component(s) stopped", details=list(msgs))

    async def _browse_switch(
        self, comps: list[BrowseComponent], to: Side, overrides: list[str] | None = None
    ) -> StepResult:
        ov = Overrides.of(overrides)
        msgs = await asyncio.gather(
            *(browse_ops.browse_switch(self.host(c.host), c, self.inv, to, ov) for c in comps)
        )
        return StepResult(
            message=f"{len(comps)} Browse component(s) point at {to}",
            details=list(msgs),
            forced=forced(ov),
        )

    async def _browse_start(self, comps: list[BrowseComponent]) -> StepResult:
        msgs = await asyncio.gather(*(browse_ops.browse_start(self.host(c.host), c) for c in comps))
        facts = await asyncio.gather(
            *(browse_facts.browse_facts(self.host(c.host), c, self.inv) for c in comps)
        )
        on = {f.side for f in facts}
        where = f"Active on {on.pop()}" if len(on) == 1 else "pointing at mixed sides"
        return StepResult(
            message=f"{len(comps)} Browse component(s) started, {where}", details=list(msgs)
        )

    @activity.defn(name="browse_stop")
    @device_activity
    async def browse_stop(self, inp: BrowseInput) -> StepResult:
        self._check_pair(inp.pair)
        return await self._browse_stop(self._components(inp.components, inp.hosts))

    @activity.defn(name="browse_switch")
    @device_activity
    async def browse_switch(self, inp: BrowseSwitchInput) -> StepResult:
        """Swap config files of stopped components so they point at `to`; does not start them."""
        self._check_pair(inp.pair)
        comps = self._components(inp.components, inp.hosts)
        return await self._browse_switch(comps, inp.to, inp.overrides)

    @activity.defn(name="browse_start")
    @device_activity
    async def browse_start(self, inp: BrowseInput) -> StepResult:
        self._check_pair(inp.pair)
        return await self._browse_start(self._components(inp.components, inp.hosts))

    @activity.defn(name="browse_move")
    @device_activity
    async def browse_move(self, inp: BrowseSwitchInput) -> StepResult:
        """Make Browse Active on `to`: stop, switch, start; nothing when it already is."""
        self._check_pair(inp.pair)
        comps = self._components(inp.components, inp.hosts)
        facts = await asyncio.gather(
            *(browse_facts.browse_facts(self.host(c.host), c, self.inv) for c in comps)
        )
        if all(f.side == inp.to and f.running for f in facts):
            return StepResult(message=f"Browse already Active on {inp.to}")
        steps = [
            await self._browse_stop(comps),
            await self._browse_switch(comps, inp.to),
            await self._browse_start(comps),
        ]
        return StepResult(
            message=f"Browse moved: {steps[-1].message}", details=[x.message for x in steps]
        )

    # -- InSync ----------------------------------------------------------------------------
    @activity.defn(name="insync_set_main")
    @device_activity
    async def insync_set_main(self, inp: SideInput) -> StepResult:
        self._check_pair(inp.pair)
        cp = self.inv.control_point
        ov = Overrides.of(inp.overrides)
        msg = await sync_tools_ops.insync_set_main(self.host(cp), self.inv.devices, inp.side, ov)
        return StepResult(message=msg, forced=forced(ov))

    @activity.defn(name="insync_state")
    @device_activity
    async def insync_state(self, inp: PairRef) -> InSyncState:
        """Whether InSync runs on the Control Point PC, and its direction."""
        self._check_pair(inp.pair)
        cp = self.inv.control_point
        running, main = await sync_tools_facts.insync_facts(self.host(cp), self.inv.devices)
        return InSyncState(host=cp.host, running=running, main=main)

    @activity.defn(name="allsync_state")
    @device_activity
    async def allsync_state(self, inp: SideInput) -> AllSyncState:
        """Whether AllSync runs on the side's CIFS NAS head."""
        self._check_pair(inp.pair)
        nas = self.inv.sides[inp.side].nas.cifs
        running = await windows_facts.process_running(
            self.host(nas), self.inv.devices.allsync_process
        )
        return AllSyncState(host=nas.host, side=inp.side, running=running)

    # -- media -------------------------------------------------------------------------------
    @activity.defn(name="find_orphans")
    @device_activity
    async def find_orphans(self, inp: OrphanInput) -> Orphans:
        """Master clips on the other side's volume that the main side does not have, each
        with the files, sizes and times the approval will cover; clips that cannot be
        purged safely are listed apart as refused. Fails (naming the host) on a listing
        that cannot be read whole, and above media_facts.MAX_ORPHANS clips."""
        self._check_pair(inp.pair)
        o = other(inp.main)
        main_host, other_host = self.inv.sides[inp.main].pseudo_host, self.inv.sides[o].pseudo_host
        found = await media_facts.find_orphans(self.host(main_host), self.host(other_host))
        return Orphans(
            main=inp.main,
            other=o,
            host=other_host.host,
            clips=[r.clip for r in found.records],
            found=[
                OrphanClip(
                    clip=r.clip,
                    size=r.size,
                    modified=r.modified,
                    files=[
                        ClipFile(name=f.name, size=f.size, modified=f.modified) for f in r.files
                    ],
                )
                for r in found.records
            ],
            refused=[RefusedClip(clip=c, reason=why) for c, why in sorted(found.refused.items())],
        )

    @activity.defn(name="purge_orphans")
    @device_activity
    async def purge_orphans(self, inp: PurgeInput) -> StepResult:
        """Delete the approved orphans on the other side's volume only (driver interlock),
        each only while it is still exactly what was approved; the others are named."""
        self._check_pair(inp.pair)
        o = other(inp.main)
        if {c.lower() for c in inp.clips} != {r.clip.lower() for r in inp.found}:
            raise CommandFailed(
                "worker",
                "the approval does not record what each clip held (a run approved before "
                "the purge covered content): nothing deleted; start the restore again",
            )
        approved = [
            media_facts.ClipRecord(
                r.clip, tuple(media_facts.ClipFile(f.name, f.size, f.modified) for f in r.files)
            )
            for r in inp.found
        ]
        host = self.inv.sides[o].pseudo_host
        outcome = await media_ops.purge_orphans(
            self.host(host),
            o,
            inp.main,
            approved,
            self.host(self.inv.sides[inp.main].pseudo_host),
            progress=activity.heartbeat,
        )
        details = [f"deleted {c}" for c in outcome.deleted]
        details += [f"already gone {c}" for c in outcome.gone]
        details += [f"refused {c}: {why}" for c, why in outcome.refused.items()]
        return StepResult(message=outcome.message, details=details)

    @activity.defn(name="dsm_asset_counts")
    @device_activity
    async def dsm_asset_counts(self, inp: PairRef) -> AssetCounts:
        self._check_pair(inp.pair)
        st = await asyncio.gather(*(asyncio.to_thread(self.dsm(s).status) for s in SIDES))
        return AssetCounts(counts={d.host: d.asset_count for d in st})

    @activity.defn(name="dsm_wait_in_sync")
    @device_activity
    async def dsm_wait_in_sync(self, inp: SyncInput) -> StepResult:
        """Wait until the peer's asset count is within `tolerance` of the main DSM's."""
        self._check_pair(inp.pair)
        me, peer = self.dsm(inp.side), self.dsm(other(inp.side))
        seen: dict[str, int | None] = {}

        async def in_sync() -> bool:
            a, b = await asyncio.gather(asyncio.to_thread(me.read), asyncio.to_thread(peer.read))
            seen.update({me.name: a.asset_count, peer.name: b.asset_count})
            if a.replication == "failed":
                raise CommandFailed(me.name, "replication failed")
            return abs((a.asset_count or 0) - (b.asset_count or 0)) <= inp.tolerance

        try:
            await self._wait("asset counts agree", in_sync, peer.name)
        except CommandFailed as e:
            raise CommandFailed(e.host, f"{e.message}; last counts {seen}") from None
        return StepResult(message=f"asset counts agree within {inp.tolerance}: {seen}")

    # -- clients ----------------------------------------------------------------------------
    @activity.defn(name="client_prepare")
    @device_activity
    async def client_prepare(self, inp: ClientInput) -> StepResult:
        """Stop Aurora, point iSCSI and the DSM at `to` (no reboot yet)."""
        self._check_pair(inp.pair)
        c = self._client(inp.host)
        ov = Overrides.of(inp.overrides)
        msg = await clients_ops.client_prepare(self.host(c), c, self.inv, inp.to, ov)
        return StepResult(message=msg, forced=forced(ov))

    @activity.defn(name="client_prepare_restart")
    @translate_errors
    async def client_prepare_restart(self, inp: ClientInput) -> StepResult:
        """Reconfigure a client for `to` (as client_prepare), then restart it (1/2) and
        wait until it is back: one activity instead of two, since hundreds of clients
        switch at once. A retry once the restart is under way resumes it and does not
        reconfigure again (what the reconfiguration said and forced is in the heartbeat
        details)."""
        self._check_pair(inp.pair)
        c = self._client(inp.host)
        prior = list(activity.info().heartbeat_details)
        just_read = not prior
        if not prior:
            # The boot before anything else, in the activity's first heartbeat (the SDK
            # sends the first at once and throttles the others): a retry then always
            # knows it, so it never restarts the client a second time.
            before = (await windows_facts.boot(self.host(c))).latest
            activity.heartbeat(before, False)
            prior = [before, False]
        if len(prior) >= 4:
            msg = str(prior[2])
            done = [ForcedRule.model_validate(f) for f in prior[3]]
        else:
            ov = Overrides.of(inp.overrides)
            async with heartbeating(*prior[:2]):
                msg = await clients_ops.client_prepare(self.host(c), c, self.inv, inp.to, ov)
            done = forced(ov)
        carry = (msg, [f.model_dump(mode="json") for f in done])
        restarted, _ = await self._restart(c, " (1/2)", carry, prior, just_read)
        return StepResult(
            message=f"{msg}; {restarted.message}", forced=done, booted=restarted.booted
        )

    @activity.defn(name="client_restart_verify")
    @translate_errors
    async def client_restart_verify(self, inp: ClientInput) -> StepResult:
        """Restart a client (2/2), wait until it is back, then check that it sees `to`'s
        V: volume. A retry resumes the restart (it never restarts the client again, also
        when the attempt that sent the restart could not record it: `inp.booted`)."""
        self._check_pair(inp.pair)
        c = self._client(inp.host)
        restarted, details = await self._restart(c, " (2/2)", booted=inp.booted)
        async with heartbeating(*details):
            seen = await clients_facts.client_verify(self.host(c), c, self.inv, inp.to)
        return StepResult(message=f"{restarted.message}; {seen}", booted=restarted.booted)

    async def _reboot(self, h: Host, what: str) -> StepResult:
        return (await self._restart(h, what))[0]

    async def _restart(
        self,
        h: Host,
        what: str,
        carry: tuple[object, ...] = (),
        resume: list[object] | None = None,
        just_read: bool = False,
        booted: float | None = None,
    ) -> tuple[StepResult, tuple[object, ...]]:
        """Restart a host and wait until it is back, with a later boot, for good.

        A boot is told by the host's uptime, never by its clock (windows_facts.Boot: a clock
        stepped forward would fake a boot, one stepped back would hide it). Back means
        up with the same boot for `timing.settle_time`: a host in a boot loop (a third
        boot seen since the restart) fails at once, naming the host, so the operator
        decides instead of the retries hiding it.

        Resumable: the boot before the restart and whether the restart was sent are
        kept in the heartbeat details (followed by `carry`), so a retry after a worker
        crash neither reboots twice nor waits for a reboot that never happened.
        `resume`: the (boot, sent) to start from instead of the prior attempt's
        heartbeat; `just_read`: that boot was read by this attempt, with nothing
        restarted since (the restart goes out at once); `booted`: the host's last boot
        the caller knows of, so that a later one counts as this restart done when no
        heartbeat says so (the first heartbeat can be lost with the worker). Returns the
        result and the last heartbeat details.
        """
        drv = self.host(h)
        t = self.inv.timing
        tol = t.boot_tolerance
        started = time.monotonic()
        prior = activity.info().heartbeat_details if resume is None else resume
        before: float
        sent = False
        fresh = just_read or not prior
        if prior:
            before, sent = float(prior[0]), bool(prior[1])  # type: ignore[arg-type]
        else:
            now = await windows_facts.boot(drv)
            before = now.latest
            if booted is not None and now.after(booted, tol):
                # Booted since the boot the caller knows of: this restart went out
                # and the attempt that sent it was lost before it could say so.
                before, sent, fresh = booted, True, False
        activity.heartbeat(before, sent, *carry)
        # A heartbeat when the details change, else often enough for the timeout: each
        # call costs the worker's event loop (hundreds of restarts are polled at once),
        # and the SDK sends at most one per 0.8 x the timeout anyway.
        hb = activity.info().heartbeat_timeout
        beat_every = max(0.2, (hb.total_seconds() if hb else t.heartbeat_timeout) / 4)
        beaten = (time.monotonic(), sent)
        deadline = started + t.reboot_timeout
        boots: list[float] = []  # the boots seen since the restart (their latest moments)
        up_since = 0.0
        while True:
            settling = False
            try:
                # A fresh try has just read the boot: the restart goes out at once (one
                # command less per restart; hundreds of clients restart together).
                seen = None if fresh else await windows_facts.boot(drv)
                fresh = False
                if seen is not None and seen.after(before, tol):
                    if not boots or seen.after(boots[-1], tol):
                        boots.append(seen.latest)
                        up_since = time.monotonic()
                        if len(boots) >= 3:
                            raise CommandFailed(
                                h.host,
                                f"keeps restarting by itself after the restart{what}: "
                                f"{len(boots)} boots seen in {time.monotonic() - started:.0f} s, "
                                f"none stayed up {t.settle_time:g} s (a boot loop?)",
                            )
                    if time.monotonic() - up_since >= t.settle_time:
                        took = up_since - started
                        return (
                            StepResult(
                                message=f"{h.host} restarted{what} in {took:.1f} s",
                                booted=boots[-1],
                            ),
                            (before, sent, *carry),
                        )
                    settling = True
                elif not sent:
                    await windows_ops.restart(drv)
                    sent = True
            except Unreachable:
                pass  # down while it reboots
            if sent != beaten[1] or time.monotonic() - beaten[0] >= beat_every:
                activity.heartbeat(before, sent, *carry)
                beaten = (time.monotonic(), sent)
            if time.monotonic() > deadline:
                if boots:
                    raise CommandFailed(
                        h.host,
                        f"came back after the restart{what} but did not stay up "
                        f"{t.settle_time:g} s within {t.reboot_timeout:.0f} s",
                    )
                raise CommandFailed(
                    h.host, f"did not come back within {t.reboot_timeout:.0f} s of restart{what}"
                )
            delay = t.poll_interval
            if settling:
                # Up and settling: one look when the settle time is over (a boot in
                # between shows as a later boot), heartbeating on the way.
                left = up_since + t.settle_time - time.monotonic()
                delay = max(delay, min(left, t.heartbeat_timeout / 3))
            await asyncio.sleep(delay)

    @activity.defn(name="client_reboot")
    @translate_errors
    async def client_reboot(self, inp: ClientRebootInput) -> StepResult:
        """Restart a client (round 1 or 2 of its switch) and wait until it is back."""
        self._check_pair(inp.pair)
        return await self._reboot(self._client(inp.host), f" ({inp.round}/2)")

    @activity.defn(name="reboot_host")
    @translate_errors
    async def reboot_host(self, inp: HostInput) -> StepResult:
        """Force a reboot of any host of the pair and wait until it is back."""
        self._check_pair(inp.pair)
        try:
            h = self.inv.host(inp.host)
        except KeyError:
            raise CommandFailed("worker", f"no host {inp.host!r} in the inventory") from None
        return await self._reboot(h, "")

    # -- InSync / AllSync through their services ---------------------------------------------
    @activity.defn(name="get_capabilities")
    async def get_capabilities(self, inp: PairRef) -> Capabilities:
        """What the inventory lets the service do itself (which manual steps it automates)."""
        self._check_pair(inp.pair)
        d = self.inv.devices
        return Capabilities(
            insync_service=d.insync_service is not None,
            allsync_service=d.allsync_service is not None,
            operators=[o.lower() for o in self.inv.operators],
        )

    @activity.defn(name="insync_run")
    @device_activity
    async def insync_run(self, inp: RunInput) -> StepResult:
        """Start or stop InSync through its service (only when the inventory names it)."""
        self._check_pair(inp.pair)
        d = self.inv.devices
        if d.insync_service is None:
            raise CommandFailed(
                "worker", "InSync is started and stopped by hand here (no devices.insync_service)"
            )
        drv = self.host(self.inv.control_point)
        return StepResult(
            message=await sync_tools_ops.tool_set(
                drv, "InSync", d.insync_service, d.insync_process, inp.running
            )
        )

    @activity.defn(name="allsync_run")
    @device_activity
    async def allsync_run(self, inp: SideRunInput) -> StepResult:
        """Start or stop AllSync on the side's CIFS NAS head through its service."""
        self._check_pair(inp.pair)
        d = self.inv.devices
        if d.allsync_service is None:
            raise CommandFailed(
                "worker", "AllSync is started and stopped by hand here (no devices.allsync_service)"
            )
        drv = self.host(self.inv.sides[inp.side].nas.cifs)
        return StepResult(
            message=await sync_tools_ops.tool_set(
                drv, "AllSync", d.allsync_service, d.allsync_process, inp.running
            )
        )

    @activity.defn(name="client_verify")
    @device_activity
    async def client_verify(self, inp: ClientInput) -> StepResult:
        self._check_pair(inp.pair)
        c = self._client(inp.host)
        return StepResult(
            message=await clients_facts.client_verify(self.host(c), c, self.inv, inp.to)
        )

    def all(self) -> list[Callable[..., object]]:
        return [
            self.get_timing,
            self.probe_pair,
            self.dsm_stop_replication,
            self.dsm_set_mode,
            self.dsm_start_replication,
            self.smartbins_set_main,
            self.smartbins_set_backup,
            self.browse_stop,
            self.browse_switch,
            self.browse_start,
            self.insync_set_main,
            self.client_prepare,
            self.client_reboot,
            self.client_prepare_restart,
            self.client_restart_verify,
            self.reboot_host,
            self.get_capabilities,
            self.insync_run,
            self.allsync_run,
            self.client_verify,
            self.browse_move,
            self.insync_state,
            self.allsync_state,
            self.find_orphans,
            self.purge_orphans,
            self.dsm_asset_counts,
            self.dsm_wait_in_sync,
        ]
