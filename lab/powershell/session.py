"""One host's shell while a script runs: the host's document, the world it sees, and
what the script has done so far; every family of cmdlets works on it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from lab.powershell.output import to_json
from lab.powershell.syntax import Command


# -- the world a host lives in -------------------------------------------------------------
class World(Protocol):
    """What a host can see beyond itself: other hosts, the pair, the V: volumes."""

    def now(self) -> float:
        """Seconds since the epoch."""
        ...

    def host(self, name: str) -> dict[str, Any] | None:
        """Another lab host's document (case-insensitive name), or None."""
        ...

    def target_side(self, iqn: str) -> str | None:
        """The side whose V: volume the iSCSI target `iqn` is."""
        ...

    def bridge(self, side: str) -> dict[str, Any] | None:
        """The side's bridge host document."""
        ...

    def portals(self, side: str) -> list[str]:
        """The side's iSCSI portal addresses (its bridge on the media network)."""
        ...

    def iqn(self, side: str) -> str:
        """The iSCSI target name of the side's V: volume."""
        ...

    def portal_target(self, portal: str) -> str | None:
        """The target an iSCSI portal serves (a side's, or a server's outside the pair)."""
        ...

    def portal_answers(self, portal: str) -> bool:
        """Whether anything answers iSCSI at this portal address now."""
        ...

    def volume_read(self, side: str, path: str) -> str | None: ...

    def volume_write(self, side: str, path: str, content: str) -> None: ...

    def volume_delete(self, side: str, path: str) -> None: ...

    def volume_has_folder(self, side: str, folder: str) -> bool: ...

    def volume_list(self, side: str, folder: str) -> list[str]:
        """Paths of the files below `folder` on the side's volume."""
        ...

    def volume_delete_tree(self, side: str, folder: str) -> int:
        """Delete every file below `folder`; returns how many."""
        ...

    def volume_stat(self, side: str, path: str) -> tuple[int, float] | None:
        """(size, last write time) of a file, or None."""
        ...

    def volume_dirs(self, side: str, folder: str) -> list[str]:
        """Recorded folders and links below `folder`."""
        ...

    def volume_links(self, side: str) -> dict[str, tuple[str, str, str]]:
        """{lower-cased path: (path, target, link type)} of the side's reparse points."""
        ...

    def dir_delete(self, side: str, folder: str) -> None: ...


def is_up(doc: dict[str, Any]) -> bool:
    return doc.get("down_until") is None


@dataclass
class Session:
    """The state a script's statements share on one host."""

    host: dict[str, Any]
    world: World
    reboot: bool = False
    # `$?` of the last statement: False also when its error was silenced.
    ok: bool = True
    settings: dict[str, str] = field(default_factory=dict)
    progress: list[str] = field(default_factory=list)
    modules_loaded: bool = False
    waited: float = 0.0
    # The statement running is `ConvertTo-Json -InputObject @(...)` (Statement.array).
    array: bool = False

    def _select(self, commands: tuple[Command, ...], objects: list[dict[str, Any]]) -> str:
        names: list[str] = commands[1].args["Property"]
        out = []
        for obj in objects:
            by_lower = {k.lower(): k for k in obj}
            picked: dict[str, Any] = {}
            for n in names:
                key = by_lower.get(n.lower())
                picked[key or n] = obj[key] if key else None
            out.append(picked)
        return to_json(out, self.array)
