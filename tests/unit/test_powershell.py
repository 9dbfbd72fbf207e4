"""PowerShell builders: values are literals, never code."""

import pytest

from activities.drivers import powershell as ps
from lab import ssh as ssh_lab


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
    assert text.splitlines()[:3] == list(ps.PREAMBLE)
    assert text.splitlines()[3:] == [
        ps.get_services(["SmartBins"]),
        "'#amsm 1/2'",
        ps.test_path("V:\\"),
        "'#amsm 2/2'",
    ]


def test_split_output_keeps_each_statement_apart() -> None:
    out = "\r\n#amsm 1/3\r\nTrue\r\n#amsm 2/3\r\na\r\nb\r\n#amsm 3/3\r\n"
    assert ps.split_output(out.replace("\r\n#amsm 1/3", "#amsm 1/3"), 3) == ["", "True", "a\nb"]
    for cut, why in [
        ("True\r\n#amsm 1/2\r\n", "stops after 1 of 2"),
        ("#amsm 2/2\r\n", "2/2 where 1/2"),
        ("#amsm 1/1\r\n#amsm 1/1\r\n", "1/1 where 2/1"),
        ("#amsm 1/1\r\nextra\r\n", "after the last statement"),
        ("", "stops after 0 of 1"),
    ]:
        n = 2 if "/2" in cut else 1
        with pytest.raises(ps.BadOutput, match=why):
            ps.split_output(cut, n)


def test_command_length_is_the_length_of_the_command_line() -> None:
    for statements in (
        [ps.test_path("V:\\")],
        [ps.remove_tree(f"V:\\x\\{i}.vmf") for i in range(40)],
    ):
        assert ps.command_length(statements) == len(ps.encoded_command(ps.script(*statements)))
    assert ps.max_command_length("ssh") == 8189 and ps.max_command_length("winrm") == 32766


def test_batches_fit_the_transport_and_keep_the_order() -> None:
    statements = [
        ps.remove_tree(f"V:\\VibrantAVIFiles\\News\\clip-{i:04d}.vmf") for i in range(400)
    ]
    assert not ps.fits(statements, "ssh") and ps.fits(statements[:10], "ssh")
    for transport in ("ssh", "winrm"):
        batches = ps.batches(statements, transport)
        assert [s for b in batches for s in b] == statements
        assert all(ps.fits(b, transport) for b in batches)
        assert len(batches) > 1
    assert len(ps.batches(statements, "ssh")) > len(ps.batches(statements, "winrm"))
    with pytest.raises(ps.UnsafeValue, match="over ssh's 8189"):
        ps.batches([ps.test_path("C:\\" + "x" * 4000)], "ssh")


def test_clixml_stderr_gives_the_error_text() -> None:
    err = (
        '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
        '<Obj S="progress" RefId="0"><MS><PR N="Record"><AV>Preparing modules</AV></PR></MS></Obj>'
        '<S S="Error">Stop-Service : Cannot stop _x005F_x0041_ &amp; co_x000D__x000A_</S>'
        '<S S="Error">At line:4 char:1_x000D__x000A_</S><S S="warning">careful</S></Objs>'
    )
    got = ps.parse_stderr(err)
    assert got.errors == "Stop-Service : Cannot stop _x0041_ & co\nAt line:4 char:1"
    assert ps.parse_stderr("The command line is too long.\r\n").other == (
        "The command line is too long."
    )
    with pytest.raises(ps.BadOutput):
        ps.parse_stderr(err.replace("</Objs>", ""))
    with pytest.raises(ps.BadOutput):
        ps.parse_stderr(err.replace('<S S="Error">', "<S S=Error>", 1))


def test_parsers() -> None:
    assert ps.parse_json_list("") == []
    assert ps.parse_json_list('{"Name":"a","Status":4}') == [{"Name": "a", "Status": 4}]
    assert (
        ps.parse_service_status(4) == "Running" and ps.parse_service_status("Stopped") == "Stopped"
    )
    assert ps.parse_datetime("/Date(1700000000000)/").year == 2023
    assert ps.parse_bool("True") is True
    with pytest.raises(ps.BadOutput):
        ps.parse_bool("yes")
    with pytest.raises(ps.BadOutput):
        ps.parse_json_list('[{"a":1},"b"]')  # never filtered down to what parses
    with pytest.raises(ps.BadOutput):
        ps.parse_json_list("{not json")
    with pytest.raises(ps.UnsafeValue):
        ps.rename_file("C:\\a", "..\\b")


def _line_of(length: int) -> list[str]:
    """One statement whose command line is exactly `length` characters long."""
    for k in range(1, 4000):
        st = [ps.test_path("C:\\" + "x" * k)]
        if ps.command_length(st) == length:
            return st
    raise AssertionError(f"no command line of {length} characters")


def test_the_ssh_limit_is_what_cmd_exe_takes_inside_its_quotes() -> None:
    # Win32-OpenSSH runs `"...cmd.exe" /c "<command>"` and cmd.exe takes 8,191 characters
    # after /c, the two quotes included (lab/ssh.py cmd_line_too_long): the longest
    # command line the driver may send is 8,189; 8,190 (what this prefix reaches) is refused.
    assert ps.max_command_length("ssh") == 8189
    over = _line_of(8190)
    assert ssh_lab.cmd_line_too_long(ps.encoded_command(ps.script(*over)))
    assert not ps.fits(over, "ssh")
    at = _line_of(8186)  # the longest this prefix reaches under the limit (4 per step)
    assert not ssh_lab.cmd_line_too_long(ps.encoded_command(ps.script(*at)))
    assert ps.fits(at, "ssh")
