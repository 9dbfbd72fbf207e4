"""Every report of every committed history (tests/histories/**), byte for byte as it was:
the markdown, the HTML, the timeline and the JSON (`amsm report --json`), each compared
with its sha256 in tests/histories/reports.sha256.

The sums were written before the reconstruction stopped walking the events of runs that
carry the engine's step records (issue 26): a change to how a report is built that
changes a committed history's report shows here. When a report is meant to change, say
why in the commit and write the sums again:
`.venv/bin/python -m tests.unit.test_report_bytes`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from records.history import load_history_file, parse_history
from records.report import Report, build_report
from records.report_render import render_html, render_markdown, render_timeline

ROOT = Path(__file__).parents[1] / "histories"
SUMS = ROOT / "reports.sha256"
HISTORIES = sorted(ROOT.rglob("*.json"))


def _json(r: Report) -> str:
    return json.dumps(r.model_dump(mode="json"), indent=None, default=str)


FORMATS: dict[str, Callable[[Report], str]] = {
    "md": render_markdown,
    "html": render_html,
    "timeline": render_timeline,
    "json": _json,
}


def sums_of(path: Path) -> dict[str, str]:
    """`relative/path.json:format` -> the sha256 of that report of that history."""
    report = build_report(parse_history(load_history_file(path), path.name))
    name = path.relative_to(ROOT).as_posix()
    return {
        f"{name}:{fmt}": hashlib.sha256(draw(report).encode()).hexdigest()
        for fmt, draw in FORMATS.items()
    }


def committed_sums() -> dict[str, str]:
    out: dict[str, str] = {}
    for line in SUMS.read_text().splitlines():
        digest, key = line.split("  ", 1)
        out[key] = digest
    return out


@pytest.mark.parametrize("path", HISTORIES, ids=[str(p.relative_to(ROOT)) for p in HISTORIES])
def test_every_report_of_a_committed_history_is_as_it_was(path: Path) -> None:
    want = committed_sums()
    got = sums_of(path)
    assert got == {k: want.get(k) for k in got}


def test_every_committed_history_has_its_sums() -> None:
    names = {k.rsplit(":", 1)[0] for k in committed_sums()}
    assert names == {p.relative_to(ROOT).as_posix() for p in HISTORIES}


if __name__ == "__main__":
    lines = [f"{d}  {k}" for p in HISTORIES for k, d in sums_of(p).items()]
    SUMS.write_text("\n".join(lines) + "\n")
    print(f"wrote {len(lines)} sums to {SUMS}")
