"""The one name rule (inventory/names.py): what Windows forbids or normalises is
refused, whatever the language; every check covers the whole string."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from activities.drivers.facts.media import clip_problem
from inventory.names import (
    RESERVED_CHARACTERS,
    host_name_problem,
    segment_problem,
    windows_folder_problem,
)

DEVICES = ["CON", "PRN", "AUX", "NUL"] + [
    f"{d}{n}" for d in ("COM", "LPT") for n in "0123456789¹²³"
]


def oracle(name: str) -> bool:
    """Naming Files, Paths, and Namespaces, restated independently of the code."""
    if not name or name in (".", "..") or len(name) > 255:
        return False
    if any(c in RESERVED_CHARACTERS or unicodedata.category(c) == "Cc" for c in name):
        return False
    if name.endswith((".", " ")):
        return False
    return name.split(".")[0].rstrip(" ").upper() not in DEVICES


@given(st.text(min_size=0, max_size=40))
def test_the_rule_matches_the_documented_one(name: str) -> None:
    assert (segment_problem(name) is None) == oracle(name)


@given(st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=30))
def test_a_trailing_newline_or_dot_never_passes(name: str) -> None:
    for tail in ("\n", ".", " ", "\r\n"):
        assert segment_problem(name + tail) is not None
        assert host_name_problem(name + tail) is not None


@pytest.mark.parametrize(
    "name",
    ["Genève", "Straße", "東京ニュース", "Ελλάδα", "Ürün", "Café (1)", "it's", "a..b", "COM10"],
)
def test_names_in_any_language_pass(name: str) -> None:
    assert segment_problem(name) is None
    assert clip_problem(f"Régions\\{name}.vmf") is None


@pytest.mark.parametrize(
    "name",
    ["clip.", "clip ", "CON", "con.vmf", "Nul.txt", "LPT¹", "COM9.x.y", "a:b", "a|b", "a*b",
     "a?b", 'a"b', "a<b", "a>b", "a/b", "tab\there", "\x7f", "", ".", ".."],
)  # fmt: skip
def test_what_windows_refuses_or_rewrites_is_refused(name: str) -> None:
    assert segment_problem(name) is not None


def test_clip_paths_and_folders() -> None:
    assert clip_problem("News\\clip.vmf") is None
    for bad in ("clip.vmf", "News\\sub\\clip.vmf", "News\\clip", "News\\.vmf", "..\\x.vmf",
                "News\\clip.vmf\n", "News\\clip.vmf."):  # fmt: skip
        assert clip_problem(bad) is not None, bad
    assert windows_folder_problem("C:\\Programme\\Médias\\Configuration") is None
    assert windows_folder_problem("C:\\") is None
    for bad in ("C:\\a.\\b", "C:\\NUL\\x", "relative\\x", "C:\\a\nb", "C:\\ok\n"):
        assert windows_folder_problem(bad) is not None, bad


def test_host_names() -> None:
    for ok in ("ED-01", "sb-y1", "Genève-ED-01", "mdi.example.org"):
        assert host_name_problem(ok) is None
    for bad in ("ED-01\n", "-x", "a b", "a_b", "x" * 64, ""):
        assert host_name_problem(bad) is not None
