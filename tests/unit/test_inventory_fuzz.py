"""Property-based fuzzing of the inventory loader: any YAML gives a valid inventory or a
clear validation error (InventoryError with field paths), never a traceback."""

from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inventory.load import InventoryError, parse_inventory
from inventory.models import Inventory

GOOD = yaml.safe_load((Path(__file__).parent / "data" / "inventory.yaml").read_text())

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(["X", "Y", "ssh", "winrm", "main", "..\\..", "$(x)", "a'b", "\x00", "é"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=25,
)


def outcome(text: str) -> None:
    try:
        inv = parse_inventory(text, "fuzz.yaml")
    except InventoryError as e:
        assert e.problems and all(isinstance(p, str) and p for p in e.problems)
        assert e.explain().startswith("fuzz.yaml: ")
        return
    assert isinstance(inv, Inventory)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_any_data_gives_an_inventory_or_a_clear_error(data: Any) -> None:
    outcome(yaml.safe_dump(data, allow_unicode=True))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_gives_an_inventory_or_a_clear_error(text: str) -> None:
    outcome(text)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    if isinstance(node, dict):
        return [prefix] + [p for k, v in node.items() for p in _paths(v, (*prefix, k))]
    if isinstance(node, list):
        return [prefix] + [p for i, v in enumerate(node) for p in _paths(v, (*prefix, i))]
    return [prefix]


PATHS = [p for p in _paths(GOOD) if p]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(PATHS), values)
def test_one_field_of_a_good_inventory_replaced_by_anything(path: tuple, value: Any) -> None:
    import copy

    data = copy.deepcopy(GOOD)
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    outcome(yaml.safe_dump(data, allow_unicode=True))
