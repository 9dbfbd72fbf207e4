"""PowerShell builders: values are literals, never code."""

import pytest

from activities.drivers import powershell as ps


@pytest.mark.parametrize(
    "value",
    ["a'b", "x'; Stop-Computer; '", "$(Get-Date)", "`whoami`", "a\u2019b", "..\\..\\x", 'say "hi"'],
)
def test_hostile_values_stay_inside_one_literal(value: str) -> None:
    quoted = ps.q(value)
    assert quoted.startswith("'") and quoted.endswith("'")
    inner = quoted[1:-1]
    # Every quote character inside is doubled, so the literal cannot be closed early.
    i = 0
    while i < len(inner):
        if inner[i] in "'\u2018\u2019\u201a\u201b":
            assert inner[i + 1] == inner[i]
            i += 2
        else:
            i += 1


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "a\x00b"])
def test_control_characters_are_refused(value: str) -> None:
    with pytest.raises(ps.UnsafeValue):
        ps.q(value)


def test_encoded_command_round_trip() -> None:
    text = ps.script(ps.get_services(["SmartBins"]), ps.test_path("V:\\"))
    cmd = ps.encoded_command(text)
    assert cmd.startswith("powershell.exe -NoProfile -NonInteractive")
    assert ps.decode_command(cmd) == text
    assert text.splitlines()[0] == "$ErrorActionPreference = 'Stop'"


def test_parsers() -> None:
    assert ps.parse_json_list("") == []
    assert ps.parse_json_list('{"Name":"a","Status":4}') == [{"Name": "a", "Status": 4}]
    assert (
        ps.parse_service_status(4) == "Running" and ps.parse_service_status("Stopped") == "Stopped"
    )
    assert ps.parse_datetime("/Date(1700000000000)/").year == 2023
    assert ps.parse_bool("True") is True
    with pytest.raises(ValueError):
        ps.parse_bool("yes")
    with pytest.raises(ps.UnsafeValue):
        ps.rename_file("C:\\a", "..\\b")
