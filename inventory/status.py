"""What the devices say, and the pair mode derived from it (never from a cache)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from inventory.models import SIDES, Side, other

PairMode = Literal["mirrored", "split", "inconsistent"]


class DsmStatus(BaseModel):
    host: str
    side: Side
    reachable: bool = True
    mode: Literal["main", "backup"] | None = None
    mode_since: str | None = None
    replication: Literal["running", "stopped", "failed"] | None = None
    role: Literal["master", "backup", "none"] | None = None
    asset_count: int | None = None
    error: str | None = None
    # The replicated database's state (sys.databases' state_desc, lower case: online,
    # restoring, ...); a database that is not online has no asset count.
    database_state: str | None = None

    @property
    def assets_text(self) -> str:
        """The asset count, or why there is none."""
        if self.asset_count is not None:
            return str(self.asset_count)
        if self.reachable and self.database_state not in (None, "online"):
            return f"not readable (database {self.database_state})"
        return "-"

    @property
    def state_text(self) -> str:
        """The manual's DSM state text."""
        if not self.reachable or self.mode is None:
            return "Not Responding"
        since = (self.mode_since or "")[:16].replace("T", " ")
        if self.mode == "main":
            return f"Online since {since}"
        if self.replication == "running":
            return "Backup"
        return f"Standby since {since}"

    @property
    def replication_text(self) -> str:
        if not self.reachable or self.replication is None:
            return "unknown"
        if self.replication == "running":
            return f"running as replication {self.role}" if self.role != "none" else "running"
        return self.replication


class ServiceState(BaseModel):
    name: str
    status: str  # Running, Stopped, ...


class BrowseStatus(BaseModel):
    name: str
    role: str
    host: str
    reachable: bool = True
    running: bool | None = None
    services: list[ServiceState] = Field(default_factory=list)
    side: Side | None = None
    error: str | None = None


class SmartBinsStatus(BaseModel):
    host: str
    side: Side
    pseudo_host: bool
    reachable: bool = True
    running: bool | None = None
    mode: str | None = None  # Normal | Pseudo
    error: str | None = None


class ClientStatus(BaseModel):
    host: str
    kind: str
    side: Side | None = None
    status: Literal["online", "unreachable", "no-volume", "unknown"] = "unknown"
    error: str | None = None


class InSyncStatus(BaseModel):
    host: str
    reachable: bool = True
    running: bool | None = None
    main: Side | None = None
    error: str | None = None


class AllSyncStatus(BaseModel):
    running_on: list[Side] = Field(default_factory=list)
    errors: dict[str, str] = Field(default_factory=dict)


class PairStatus(BaseModel):
    pair: str
    read_at: str
    dsm: dict[Side, DsmStatus]
    smartbins: list[SmartBinsStatus]
    browse: list[BrowseStatus]
    clients: list[ClientStatus]
    insync: InSyncStatus
    allsync: AllSyncStatus

    @property
    def derived(self) -> tuple[PairMode, Side | None, str]:
        return derive_mode(self.dsm)

    @property
    def browse_active_on(self) -> Side | None:
        return browse_active_on(self.browse)

    def to_json(self) -> dict[str, object]:
        """The `status --json` contract."""
        mode, main, reason = self.derived
        data = self.model_dump(mode="json")
        for side in SIDES:
            d = self.dsm[side]
            data["dsm"][side]["state"] = d.state_text
        data.update(
            mode=mode,
            main=main,
            reason=reason,
            browse={"active_on": self.browse_active_on, "components": data["browse"]},
            insync={**data["insync"]},
            allsync={**data["allsync"]},
        )
        return data


def derive_mode(dsm: dict[Side, DsmStatus]) -> tuple[PairMode, Side | None, str]:
    """mirrored (S main, other backup, replication running from S), split, or inconsistent.

    Returns (mode, main side or None, a sentence saying why).
    """
    for side in SIDES:
        d = dsm[side]
        if not d.reachable or d.mode is None:
            return "inconsistent", None, f"DSM {d.host} (side {side}) is not responding"
    x, y = dsm["X"], dsm["Y"]
    if x.mode == "main" and y.mode == "main":
        running = [d.host for d in (x, y) if d.replication == "running"]
        if running:
            return (
                "inconsistent",
                None,
                f"both DSMs are main but replication runs on {', '.join(running)}",
            )
        return "split", None, "both DSMs are main and replication is stopped"
    if x.mode == "backup" and y.mode == "backup":
        return "inconsistent", None, "both DSMs are in backup mode: no side is main"
    main: Side = "X" if x.mode == "main" else "Y"
    m, b = dsm[main], dsm[other(main)]
    if m.replication == "running" and m.role == "master":
        if b.replication == "running" and b.role == "backup":
            return "mirrored", main, f"{main} main, replicating to {other(main)}"
        return (
            "inconsistent",
            main,
            f"DSM {m.host} replicates as master but {b.host} reports replication "
            f"{b.replication} ({b.role})",
        )
    return (
        "inconsistent",
        main,
        f"{main} main and {other(main)} backup, but replication on {m.host} is {m.replication}",
    )


def browse_active_on(components: list[BrowseStatus]) -> Side | None:
    """Browse is Active on S when every component runs and points at S."""
    if not components:
        return None
    sides = {c.side for c in components}
    if len(sides) == 1 and all(c.running for c in components):
        return next(iter(sides))
    return None
