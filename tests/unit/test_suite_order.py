"""The suite's file order (tests/support/order.py) names files that exist, once each."""

from __future__ import annotations

from pathlib import Path

from tests.support.order import HEAVIEST, rank

ROOT = Path(__file__).resolve().parents[2]


def test_the_heaviest_files_exist_once_each() -> None:
    missing = [p for p in HEAVIEST if not (ROOT / p).is_file()]
    assert not missing, f"tests/support/order.py lists files that are gone: {missing}"
    assert len(set(HEAVIEST)) == len(HEAVIEST)


def test_the_heaviest_come_first_and_the_unit_tests_last() -> None:
    assert rank(HEAVIEST[0]) < rank(HEAVIEST[-1]) < rank("tests/integration/test_new.py")
    assert rank("tests/integration/test_new.py") < rank("tests/unit/test_suite_order.py")
    assert rank("tests/integration/test_new.py") < rank("tests/test_histories.py")
