"""Inputs and results of the activities: small pydantic models, never a secret."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from inventory.models import Side


class PairRef(BaseModel):
    pair: str


class SideInput(BaseModel):
    pair: str
    side: Side


class DsmModeInput(BaseModel):
    pair: str
    side: Side
    mode: Literal["main", "backup"]


class BrowseInput(BaseModel):
    pair: str
    components: list[str] | None = None  # None = all


class BrowseSwitchInput(BaseModel):
    pair: str
    to: Side
    components: list[str] | None = None


class ClientInput(BaseModel):
    pair: str
    host: str
    to: Side


class ClientRebootInput(BaseModel):
    pair: str
    host: str
    round: int  # 1 or 2: a client restarts twice


class StepResult(BaseModel):
    """What an activity did, as sentences a person can read."""

    message: str
    details: list[str] = []
