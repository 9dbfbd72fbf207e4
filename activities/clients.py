"""The switchable clients: prepared for a side, restarted (resumably, told by their boot),
verified; and the restart of any host of the pair."""

from __future__ import annotations

import asyncio
import time

from temporalio import activity

from activities.drivers.errors import CommandFailed, Unreachable
from activities.drivers.facts import clients as clients_facts
from activities.drivers.facts import windows as windows_facts
from activities.drivers.interlocks import Overrides
from activities.drivers.operations import clients as clients_ops
from activities.drivers.operations import windows as windows_ops
from activities.models import ClientInput, ClientRebootInput, ForcedRule, HostInput, StepResult
from activities.support import (
    FamilyActivities,
    device_activity,
    forced,
    heartbeating,
    translate_errors,
)
from inventory.models import Host, Side, SwitchableClient

# The last heartbeat detail of a client_prepare_restart that turns UWF off for the switch.
UWF_OFF = "uwf-off"  # its extra restart (UWF off from that boot) is under way
UWF_ON = "uwf-on"  # past it: UWF is turned on again with the reconfiguration


def first_line(message: str) -> str:
    """The first line of a host's error (PowerShell adds where it happened below)."""
    return message.strip().splitlines()[0] if message.strip() else message


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
        details).

        Where the site allows it (devices.uwf_off_for_switch) and UWF protects the
        client's C:, first turns UWF off from the next boot and restarts the client once
        more, so that the reconfiguration is written to the volume; then turns UWF on
        again from restart 1/2 (UWF_Filter.Disable / Enable take effect at a restart)."""
        self.ctx.check_pair(inp.pair)
        c = self.ctx.client(inp.host)
        prior = list(activity.info().heartbeat_details)
        # UWF turned off for the switch (devices.uwf_off_for_switch): a last detail says
        # so, UWF_OFF while the extra restart runs, UWF_ON from then on.
        uwf = bool(prior) and prior[-1] in (UWF_OFF, UWF_ON)
        if prior and prior[-1] == UWF_OFF:
            await self._restart(c, " (UWF off)", (UWF_OFF,), prior[:2])
            prior = []
        elif not prior and await clients_ops.uwf_off_for_next_boot(self.ctx.host(c), c, self.inv):
            # Off from the next boot; that boot comes now, before anything is changed
            # (a retry before this heartbeat turns it off again: the same).
            uwf = True
            before = (await windows_facts.boot(self.ctx.host(c))).latest
            activity.heartbeat(before, False, UWF_OFF)
            await self._restart(c, " (UWF off)", (UWF_OFF,), [before, False], just_read=True)
            prior = []
        mark = (UWF_ON,) if uwf else ()
        just_read = not prior
        if not prior:
            # The boot before anything else, in the activity's first heartbeat (the SDK
            # sends the first at once and throttles the others): a retry then always
            # knows it, so it never restarts the client a second time.
            before = (await windows_facts.boot(self.ctx.host(c))).latest
            activity.heartbeat(before, False, *mark)
            prior = [before, False, *mark]
        if len(prior) >= 4:
            msg = str(prior[2])
            done = [ForcedRule.model_validate(f) for f in prior[3]]
        else:
            ov = Overrides.of(inp.overrides)
            async with heartbeating(*prior):
                msg = await clients_ops.client_prepare(self.ctx.host(c), c, self.inv, inp.to, ov)
                if uwf:
                    # Written with UWF off: on the volume. On again from restart 1/2.
                    back = await clients_ops.uwf_on_for_next_boot(self.ctx.host(c), c)
                    msg = f"UWF off for an extra restart; {msg}; {back}"
            done = forced(ov)
        carry = (msg, [f.model_dump(mode="json") for f in done], *mark)
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
        self.ctx.check_pair(inp.pair)
        c = self.ctx.client(inp.host)
        restarted, details = await self._restart(c, " (2/2)", booted=inp.booted)
        await self._await_mount(c, inp.to, " (2/2)", details)
        drv = self.ctx.host(c)
        async with heartbeating(*details):
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

    async def _await_mount(
        self, c: SwitchableClient, to: Side, what: str, details: tuple[object, ...]
    ) -> None:
        """Wait, after a restart, until the client is logged in to `to`'s target and has
        V:, polling every `timing.poll_interval` and heartbeating `details` (the
        restart's, so a retry still resumes it), for at most `timing.mount_timeout`.

        The host answering says nothing of either: the iSCSI initiator logs in again
        and StorNext mounts V: in services that start beside sshd and WinRM, not before
        them (Microsoft Learn, SetupPersistentIScsiDevices: only a service configured to
        depend on MSiSCSI waits for the persistent volumes; StorNext reads fsnameservers
        when its services start). A CommandFailed from the host (its providers still
        starting) is waited out too. Raises CommandFailed naming what is still missing,
        the host's last error among it."""
        drv = self.ctx.host(c)
        t = self.inv.timing
        started = time.monotonic()
        target = self.inv.sides[to].iscsi_target
        while True:
            missing = []
            try:
                seen = await clients_facts.mount_state(drv, self.inv, to)
                if not seen.sessions:
                    missing.append(f"no iSCSI session to {to}'s target {target}")
                if not seen.volume:
                    missing.append("no V: drive")
            except Unreachable:
                missing.append("it did not answer")
            except CommandFailed as e:
                # Early in a boot the host answers before its providers do: the iSCSI
                # cmdlets (CIM classes served through WMI) fail while Winmgmt and the
                # initiator service start, services of their own beside sshd and WinRM.
                # Waited out like a host that does not answer; named at the deadline.
                missing.append(f"it answered with an error: {first_line(e.message)}")
            if not missing:
                return
            activity.heartbeat(*details)
            if time.monotonic() - started >= t.mount_timeout:
                raise CommandFailed(
                    c.host,
                    f"{c.host} did not log in to {to} and mount V: within "
                    f"{t.mount_timeout:g} s of answering after the restart{what}: "
                    f"{'; '.join(missing)}",
                )
            await asyncio.sleep(min(t.poll_interval, t.heartbeat_timeout / 3))

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
        up with the same boot for `timing.settle_time`; once the restart is sent, a host
        that answers with an error (CommandFailed: WMI still starting) is waited out as
        one that does not answer, its last error named at `timing.reboot_timeout`. A
        host in a boot loop (a third
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
        drv = self.ctx.host(h)
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
        failed: CommandFailed | None = None  # the host's last error since the restart
        while True:
            settling = False
            seen = None
            try:
                # A fresh try has just read the boot: the restart goes out at once (one
                # command less per restart; hundreds of clients restart together).
                seen = None if fresh else await windows_facts.boot(drv)
                fresh = False
                failed = None
                if not sent and (seen is None or not seen.after(before, tol)):
                    await windows_ops.restart(drv)
                    sent = True
            except Unreachable:
                pass  # down while it reboots
            except CommandFailed as e:
                if not sent:
                    raise  # before the restart: the host's answer, not a boot under way
                # Early in a boot the host answers before WMI does (Winmgmt starts as a
                # service of its own, beside sshd and WinRM): Win32_OperatingSystem
                # fails for a while. Waited out like a host that does not answer, and
                # named if the deadline passes.
                failed = e
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
            if sent != beaten[1] or time.monotonic() - beaten[0] >= beat_every:
                activity.heartbeat(before, sent, *carry)
                beaten = (time.monotonic(), sent)
            if time.monotonic() > deadline:
                last = f"; its last answer: {first_line(failed.message)}" if failed else ""
                if boots:
                    raise CommandFailed(
                        h.host,
                        f"came back after the restart{what} but did not stay up "
                        f"{t.settle_time:g} s within {t.reboot_timeout:.0f} s{last}",
                    )
                raise CommandFailed(
                    h.host,
                    f"did not come back within {t.reboot_timeout:.0f} s of restart{what}{last}",
                )
            delay = t.poll_interval
            if settling:
                # Up and settling: one look when the settle time is over (a boot in
                # between shows as a later boot), heartbeating on the way.
                left = up_since + t.settle_time - time.monotonic()
                delay = max(delay, min(left, t.heartbeat_timeout / 3))
            await asyncio.sleep(delay)
