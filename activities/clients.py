"""The switchable clients: prepared for a side, restarted (resumably, told by their boot),
verified; and the restart of any host of the pair."""

from __future__ import annotations

import dataclasses

from pydantic import ValidationError
from temporalio import activity

from activities.drivers.errors import CommandFailed, OwnRecordUnreadable
from activities.drivers.facts import clients as clients_facts
from activities.drivers.facts import windows as windows_facts
from activities.drivers.interlocks import Overrides
from activities.drivers.operations import clients as clients_ops
from activities.drivers.operations import reboot as reboot_ops
from activities.drivers.operations.reboot import first_line
from activities.models import ClientInput, ClientRebootInput, HostInput, RestartBeat, StepResult
from activities.support import (
    FamilyActivities,
    device_activity,
    forced,
    heartbeating,
    translate_errors,
)
from inventory.models import Host


def prior_beat(host: str) -> RestartBeat | None:
    """Where the restart of `host` was, as the prior attempt's heartbeat said (None: no
    prior attempt, or none that heartbeat). A beat that cannot be read (a worker of
    another build wrote it, or it is corrupted) is amsm's own record, not the host's
    answer: OwnRecordUnreadable, before anything is sent to the host. Not read afresh
    instead: the restart may have gone out, and only a human can tell whether to
    restart the host again (a retry of the step starts without the record)."""
    details = activity.info().heartbeat_details
    try:
        return RestartBeat.read(details)
    except (ValueError, TypeError, IndexError) as e:  # pydantic's ValidationError included
        what = _why(e)
        activity.logger.error(
            "%s: the heartbeat details of attempt %d cannot be read (%s): %s",
            host,
            activity.info().attempt - 1,
            what,
            repr(list(details))[:500],
        )
        raise OwnRecordUnreadable(
            host,
            f"the restart under way cannot be resumed: the record its last attempt left "
            f"(the activity's heartbeat details) cannot be read ({what}). That is amsm's "
            f"own record, not an answer of {host}, and nothing was sent to {host}: see "
            f"whether {host} is up and where it restarted, then retry the step (it reads "
            "the host afresh); see docs/operators/when-something-goes-wrong.md",
        ) from None


def _why(e: Exception) -> str:
    """Why a beat cannot be read, in one line: pydantic's field and complaint."""
    if isinstance(e, ValidationError):
        said = "; ".join(
            f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors()[:3]
        )
    else:
        said = f"{type(e).__name__}: {first_line(str(e))}"
    return said[:300]


class ClientActivities(FamilyActivities):
    @activity.defn(name="client_prepare")
    @device_activity
    async def client_prepare(self, inp: ClientInput) -> StepResult:
        """Stop Aurora, point iSCSI and the DSM at `to` (no reboot yet)."""
        self.ctx.check_pair(inp.pair)
        c = self.ctx.client(inp.host)
        ov = Overrides.of(inp.overrides)
        msg = await clients_ops.client_prepare(self.ctx.host(c), c, self.inv, inp.to, ov)
        return StepResult(message=msg, forced=forced(ov))

    @activity.defn(name="client_prepare_restart")
    @translate_errors
    async def client_prepare_restart(self, inp: ClientInput) -> StepResult:
        """Reconfigure a client for `to` (as client_prepare), then restart it (1/2) and
        wait until it is back: one activity instead of two, since hundreds of clients
        switch at once. A retry once the restart is under way resumes it and does not
        reconfigure again (what the reconfiguration said and forced is in the heartbeat
        details, a RestartBeat).

        Where the site allows it (devices.uwf_off_for_switch) and UWF protects the
        client's C:, first turns UWF off from the next boot and restarts the client once
        more, so that the reconfiguration is written to the volume; then turns UWF on
        again from restart 1/2 (UWF_Filter.Disable / Enable take effect at a restart)."""
        self.ctx.check_pair(inp.pair)
        c = self.ctx.client(inp.host)
        prior = prior_beat(c.host)
        uwf = prior is not None and prior.uwf is not None
        if prior is not None and prior.uwf == "off":
            await self._restart(c, " (UWF off)", prior)
            prior = None
        elif prior is None and await clients_ops.uwf_off_for_next_boot(
            self.ctx.host(c), c, self.inv
        ):
            # Off from the next boot; that boot comes now, before anything is changed
            # (a retry before this heartbeat turns it off again: the same).
            uwf = True
            extra = RestartBeat(
                before=(await windows_facts.boot(self.ctx.host(c))).latest, uwf="off"
            )
            activity.heartbeat(*extra.details())
            await self._restart(c, " (UWF off)", extra, just_read=True)
        just_read = prior is None
        if prior is None:
            # The boot before anything else, in the activity's first heartbeat (the SDK
            # sends the first at once and throttles the others): a retry then always
            # knows it, so it never restarts the client a second time.
            before = (await windows_facts.boot(self.ctx.host(c))).latest
            prior = RestartBeat(before=before, uwf="on" if uwf else None)
            activity.heartbeat(*prior.details())
        if prior.prepared is None:
            ov = Overrides.of(inp.overrides)
            async with heartbeating(*prior.details()):
                msg = await clients_ops.client_prepare(self.ctx.host(c), c, self.inv, inp.to, ov)
                if uwf:
                    # Written with UWF off: on the volume. On again from restart 1/2.
                    back = await clients_ops.uwf_on_for_next_boot(self.ctx.host(c), c)
                    msg = f"UWF off for an extra restart; {msg}; {back}"
            prior = prior.model_copy(update={"prepared": msg, "forced": forced(ov)})
        restarted, _ = await self._restart(c, " (1/2)", prior, just_read)
        return StepResult(
            message=f"{prior.prepared}; {restarted.message}",
            forced=prior.forced,
            booted=restarted.booted,
        )

    @activity.defn(name="client_restart_verify")
    @translate_errors
    async def client_restart_verify(self, inp: ClientInput) -> StepResult:
        """Restart a client (2/2), wait until it is back, then check that it sees `to`'s
        V: volume. A retry resumes the restart (it never restarts the client again, also
        when the attempt that sent the restart could not record it: `inp.booted`)."""
        self.ctx.check_pair(inp.pair)
        c = self.ctx.client(inp.host)
        restarted, beat = await self._restart(c, " (2/2)", booted=inp.booted)
        drv = self.ctx.host(c)
        await reboot_ops.await_mount(
            drv, self.inv, inp.to, " (2/2)", lambda: activity.heartbeat(*beat.details())
        )
        async with heartbeating(*beat.details()):
            seen = await clients_facts.client_verify(drv, c, self.inv, inp.to)
            pointer = await clients_facts.check_dsm_pointer(drv, c, self.inv, inp.to)
        return StepResult(
            message=f"{restarted.message}; {seen}; {pointer}", booted=restarted.booted
        )

    @activity.defn(name="client_reboot")
    @translate_errors
    async def client_reboot(self, inp: ClientRebootInput) -> StepResult:
        """Restart a client (round 1 or 2 of its switch) and wait until it is back."""
        self.ctx.check_pair(inp.pair)
        return await self._reboot(self.ctx.client(inp.host), f" ({inp.round}/2)")

    @activity.defn(name="client_verify")
    @device_activity
    async def client_verify(self, inp: ClientInput) -> StepResult:
        """Check that the client sees `to`'s V: volume and uses `to`'s DSM (reads only)."""
        self.ctx.check_pair(inp.pair)
        c = self.ctx.client(inp.host)
        drv = self.ctx.host(c)
        seen = await clients_facts.client_verify(drv, c, self.inv, inp.to)
        pointer = await clients_facts.check_dsm_pointer(drv, c, self.inv, inp.to)
        return StepResult(message=f"{seen}; {pointer}")

    @activity.defn(name="reboot_host")
    @translate_errors
    async def reboot_host(self, inp: HostInput) -> StepResult:
        """Force a reboot of any host of the pair and wait until it is back."""
        self.ctx.check_pair(inp.pair)
        try:
            h = self.inv.host(inp.host)
        except KeyError:
            raise CommandFailed("worker", f"no host {inp.host!r} in the inventory") from None
        return await self._reboot(h, "")

    async def _reboot(self, h: Host, what: str) -> StepResult:
        return (await self._restart(h, what))[0]

    async def _restart(
        self,
        h: Host,
        what: str,
        resume: RestartBeat | None = None,
        just_read: bool = False,
        booted: float | None = None,
    ) -> tuple[StepResult, RestartBeat]:
        """Restart a host and wait until it is back for good (operations/reboot.py),
        heartbeating where the restart is beside what `resume` carries. `resume`: the
        beat to start from instead of the prior attempt's heartbeat; `just_read` and
        `booted` as in reboot.restart_and_wait. Returns the result and the last beat."""
        carry = resume if resume is not None else prior_beat(h.host)
        # A beat when the state changes, else four per heartbeat timeout: each costs the
        # worker's event loop, and the SDK sends at most one per 0.8 x the timeout anyway.
        hb = activity.info().heartbeat_timeout
        beat_every = max(0.2, (hb.total_seconds() if hb else self.inv.timing.heartbeat_timeout) / 4)
        template = carry if carry is not None else RestartBeat(before=0.0)

        def beat(state: reboot_ops.RestartState) -> None:
            activity.heartbeat(*template.model_copy(update=dataclasses.asdict(state)).details())

        done = await reboot_ops.restart_and_wait(
            self.ctx.host(h),
            self.inv.timing,
            what,
            beat,
            beat_every,
            resume=None if carry is None else reboot_ops.RestartState(carry.before, carry.sent),
            just_read=just_read,
            booted=booted,
        )
        last = template.model_copy(update=dataclasses.asdict(done.state))
        return StepResult(message=done.sentence, booted=done.booted), last
