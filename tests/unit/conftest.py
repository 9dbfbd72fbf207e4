"""The lab on disk for unit tests that run the lab's interpreter without its servers:
initialised once per test module, copied fresh for each test (a copy is faster)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lab.init import init_lab
from lab.state import LabState


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small pair: one editor, one SmartBins server a side. A module may override it."""
    d = tmp_path_factory.mktemp("lab-template")
    init_lab(d, editors=1, ingest=0, smartbins=1, reboot_seconds=0.3)
    return d


@pytest.fixture
def lab(template: Path, tmp_path: Path) -> LabState:
    d = tmp_path / "lab"
    shutil.copytree(template, d)
    return LabState(d)
