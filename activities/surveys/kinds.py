"""What a survey fact is: a reading through a host driver, or through a DSM profile over
the DSM driver's session; where it is read (roles, profiles) and with which arguments."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from activities.drivers.dsm_profiles import DsmProfile, Sql
from activities.drivers.host import HostDriver
from activities.surveys.models import SurveyTarget
from inventory.models import Inventory

Args = dict[str, Any]
HostRead = Callable[[HostDriver, Inventory, SurveyTarget, Args], Awaitable[Any]]
Calls = Callable[[Inventory, SurveyTarget], list[tuple[str | None, Args]]]


def once(inv: Inventory, t: SurveyTarget) -> list[tuple[str | None, Args]]:
    return [(None, {})]


@dataclass(frozen=True)
class HostFact:
    name: str
    doc: str
    read: HostRead
    roles: tuple[str, ...] | None = None  # None: every Windows host
    calls: Calls = once  # (variant, args) of each reading on a host
    # Its value depends on the moment it is read (the clock against the worker's):
    # a replay checks that it reads, not that it reads the same.
    volatile: bool = False


@dataclass(frozen=True)
class DsmFact:
    name: str
    doc: str
    read: Callable[[DsmProfile, Sql], Any]
    profiles: tuple[str, ...] = ("lab", "sqlserver")
