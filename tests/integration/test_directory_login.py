"""Directory login (console/directory.py, docs/site/directory-login.md) against a real
OpenLDAP server: Debian's slapd on loopback (tests/support/slapd.py), over ldaps:// and
StartTLS with a test CA; ann operates through a nested group, vic views, nob is in no
group the console maps. Then the console itself, over HTTP: a person removed from the
group loses the right to act once the re-check interval has passed."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.client import Client

from api.refusal import Refused
from console.accounts import write_accounts
from console.auth import Gate
from console.directory import (
    Directory,
    DirectoryDown,
    DirectoryError,
    DirectoryRefused,
    _close,
    directory_of,
)
from inventory.load import parse_inventory
from inventory.models import ConsoleLdap
from tests.support.console import console_server, form_login, http
from tests.support.slapd import (
    PASSWORD,
    SEARCH_DN,
    SEARCH_PASSWORD,
    SUFFIX,
    UPN_SUFFIX,
    Slapd,
    group_dn,
    person_dn,
    running_slapd,
    unavailable,
)
from tests.support.worker import running_worker

pytestmark = pytest.mark.skipif(unavailable() is not None, reason=unavailable() or "")

# Whole DNs; written in two forms a DN can take (spaces after the commas, other case).
GROUPS = {
    group_dn("AMSM-Operators"): "operator",
    f"CN=AMSM-Viewers, OU=groups, {SUFFIX.upper()}": "viewer",
}


@pytest.fixture
def slapd(tmp_path: Path) -> Iterator[Slapd]:
    with running_slapd(tmp_path) as server:
        yield server


def settings(slapd: Slapd, tmp_path: Path, **changes: Any) -> dict[str, Any]:
    """`console.ldap` for this slapd, with the search account's password in a 0600 file."""
    pw = tmp_path / "directory-search-password"
    pw.write_text(SEARCH_PASSWORD + "\n")
    pw.chmod(0o600)
    out = {
        "url": slapd.ldaps_url,
        "ca_file": str(slapd.ca_file),
        "user_template": f"uid={{user}},ou=people,{SUFFIX}",
        "base_dn": SUFFIX,
        "server": "openldap",
        "groups": GROUPS,
        "recheck": "1s",
        "search": {"bind_dn": SEARCH_DN, "password_file": str(pw)},
        **changes,
    }
    return {k: v for k, v in out.items() if v is not None}


def directory(slapd: Slapd, tmp_path: Path, **changes: Any) -> Directory:
    return Directory(ConsoleLdap(**settings(slapd, tmp_path, **changes)), tmp_path / "inv.yaml")


def test_a_nested_operator_and_a_viewer_log_in_over_ldaps_and_starttls(
    slapd: Slapd, tmp_path: Path
) -> None:
    for d in (
        directory(slapd, tmp_path),
        directory(slapd, tmp_path, url=slapd.ldap_url, start_tls=True),
    ):
        ann = d.login("ann", PASSWORD)  # in Night-Shift, a member of AMSM-Operators
        assert ann is not None and (ann.role, ann.dn) == ("operator", person_dn("ann"))
        olga = d.login("Olga ", PASSWORD)  # in AMSM-Operators itself; the name as known
        assert olga is not None and (olga.name, olga.role) == ("olga", "operator")
        vic = d.login("vic", PASSWORD)  # AMSM-Viewers, mapped by its DN
        assert vic is not None and vic.role == "viewer"
        assert d.role_now(person_dn("ann")) == "operator"
        assert d.role_now(person_dn("vic")) == "viewer"


def test_a_wrong_password_an_unknown_name_and_an_empty_password_are_refused(
    slapd: Slapd, tmp_path: Path
) -> None:
    d = directory(slapd, tmp_path)
    assert d.login("ann", "not-the-password") is None
    assert d.login("zed", PASSWORD) is None
    # An empty password would be an unauthenticated bind, which slapd answers with success.
    assert d.login("ann", "") is None
    # Not a name the histories could hold, nor one that could change the DN.
    assert d.login("ann,ou=groups", PASSWORD) is None
    assert d.login("*", PASSWORD) is None


def test_a_group_of_a_mapped_name_elsewhere_gives_no_role(slapd: Slapd, tmp_path: Path) -> None:
    # Whoever may create a group in some other OU names it AMSM-Operators, with nob in
    # it: the inventory names the group by its whole DN, and this is not it.
    slapd.add(
        f"cn=AMSM-Operators,ou=people,{SUFFIX}",
        {"objectClass": ["groupOfNames"], "cn": ["AMSM-Operators"], "member": [person_dn("nob")]},
    )
    d = directory(slapd, tmp_path)
    with pytest.raises(DirectoryRefused, match="nob is in no directory group"):
        d.login("nob", PASSWORD)
    assert d.role_now(person_dn("nob")) is None
    # A group whose name holds an escaped comma (RFC 4514), mapped by its DN.
    night = "cn=Night\\, Late,ou=groups," + SUFFIX
    slapd.add(
        night,
        {"objectClass": ["groupOfNames"], "cn": ["Night, Late"], "member": [person_dn("nob")]},
    )
    d = directory(slapd, tmp_path, groups={night.replace(",ou=", ", OU="): "viewer"})
    assert d.role_now(person_dn("nob")) == "viewer"
    found = d.login("nob", PASSWORD)
    assert found is not None and found.role == "viewer"


def test_a_person_in_no_mapped_group_is_refused_with_the_groups_named(
    slapd: Slapd, tmp_path: Path
) -> None:
    with pytest.raises(DirectoryRefused) as e:
        directory(slapd, tmp_path).login("nob", PASSWORD)
    assert not isinstance(e.value, DirectoryDown)
    said = str(e.value)
    assert "nob is in no directory group that gives a role" in said
    assert "AMSM-Operators" in said and "docs/site/directory-login.md" in said


def test_a_certificate_of_another_ca_and_a_silent_directory_are_down(
    slapd: Slapd, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    with running_slapd(other) as stranger:
        # Our CA file, the other server's certificate: the TLS handshake fails.
        wrong = directory(slapd, tmp_path, url=stranger.ldaps_url)
        with pytest.raises(DirectoryDown) as e:
            wrong.login("ann", PASSWORD)
        assert f"the directory at {stranger.ldaps_url} could not be asked" in str(e.value)
    with pytest.raises(DirectoryDown, match="local accounts still log in"):
        wrong.login("ann", PASSWORD)  # nothing listens there now


def searching(d: Directory) -> Any:
    """A connection of `d`'s, bound as its search account."""
    conn = d._connect()
    conn.simple_bind_s(SEARCH_DN, SEARCH_PASSWORD)
    return conn


def test_active_directory_people_are_found_by_upn_or_by_the_implicit_upn(
    slapd: Slapd, tmp_path: Path
) -> None:
    # slapd cannot bind by a UPN (Active Directory can): the search for the person's DN
    # after the bind is run here, as the search account.
    ad = directory(
        slapd, tmp_path, user_template=None, upn_suffix=UPN_SUFFIX, server="active-directory"
    )
    conn = searching(ad)
    # ann has an explicit userPrincipalName; olga only a sAMAccountName, with which
    # Active Directory binds olga@amsm.test too (MS-ADTS 5.1.1.1.1, the implicit UPN).
    assert ad._dn_of(conn, "ann") == person_dn("ann")
    assert ad._dn_of(conn, "olga") == person_dn("olga")
    assert ad._dn_of(conn, "zed") is None
    # Two people answering the one name (vic's UPN, nob's sAMAccountName): neither.
    slapd.modify(person_dn("vic"), "userPrincipalName", [f"nob@{UPN_SUFFIX}"])
    assert ad._dn_of(conn, "nob") is None
    # Only people: a group named like the person is not them.
    slapd.modify(person_dn("nob"), "objectCategory", ["group"])
    assert ad._dn_of(conn, "nob") == person_dn("vic")
    _close(conn)


def test_a_person_gone_or_disabled_loses_the_role_at_the_recheck(
    slapd: Slapd, tmp_path: Path
) -> None:
    d = directory(slapd, tmp_path)
    assert d.role_now(person_dn("olga")) == "operator"
    slapd.modify(person_dn("olga"), "", [], "delete-entry")  # still a member of the group
    assert d.role_now(person_dn("olga")) is None
    # Active Directory: a disabled account (userAccountControl 514: ACCOUNTDISABLE, 0x2).
    ad = directory(
        slapd, tmp_path, user_template=None, upn_suffix=UPN_SUFFIX, server="active-directory"
    )
    conn = searching(ad)
    assert ad._present(conn, person_dn("ann"))
    slapd.modify(person_dn("ann"), "userAccountControl", ["514"])
    assert not ad._present(conn, person_dn("ann"))
    assert not ad._present(conn, person_dn("olga"))  # gone
    _close(conn)


CHILD = """
import json, sys
from console.directory import Directory, DirectoryDown
from inventory.models import ConsoleLdap
d = Directory(ConsoleLdap(**json.loads(sys.argv[1])), sys.argv[2])
import ldap
print(json.dumps([ldap.get_option(o) for o in (ldap.OPT_X_TLS_CACERTDIR, ldap.OPT_URI)]))
try:
    print(d.login("ann", sys.argv[3]))
except DirectoryDown as e:
    print("down:", e)
"""


def test_ldap_conf_and_ldaprc_add_no_trust_anchor(slapd: Slapd, tmp_path: Path) -> None:
    # libldap reads ldap.conf, ~/.ldaprc, ./ldaprc and LDAP* variables (ldap.conf(5)); a
    # TLS_CACERTDIR there could trust more CAs than ca_file. The console sets LDAPNOINIT
    # (python-ldap's own tests do too): none of them is read. A process of its own, as
    # libldap reads them once, at its first call.
    other = tmp_path / "other"
    other.mkdir()
    anchors = tmp_path / "anchors"
    anchors.mkdir()
    with running_slapd(other) as stranger:
        (anchors / "stranger.pem").write_bytes(stranger.ca_file.read_bytes())
        (tmp_path / ".ldaprc").write_text(f"TLS_CACERTDIR {anchors}\n")  # ~/.ldaprc
        (tmp_path / "ldaprc").write_text("URI ldap://from-ldaprc.invalid\n")  # ./ldaprc
        env = {**os.environ, "LDAPTLS_CACERTDIR": str(anchors), "HOME": str(tmp_path)}
        env.pop("LDAPNOINIT", None)
        ours = settings(slapd, tmp_path, url=stranger.ldaps_url, search=None)
        ran = subprocess.run(
            [sys.executable, "-c", CHILD, json.dumps(ours), str(tmp_path / "i.yaml"), PASSWORD],
            cwd=tmp_path, env={**env, "PYTHONPATH": str(Path(__file__).parents[2])},
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    read, said = ran.stdout.split("\n", 1)
    cacertdir, uri = json.loads(read)  # nothing of theirs was read: libldap's defaults
    assert cacertdir is None and "from-ldaprc" not in uri, ran.stdout
    assert said.startswith(f"down: the directory at {stranger.ldaps_url}"), ran.stdout


def test_files_open_to_others_are_refused_at_start(slapd: Slapd, tmp_path: Path) -> None:
    d = directory(slapd, tmp_path)
    assert d.password_file is not None
    d.password_file.chmod(0o644)
    with pytest.raises(DirectoryError, match="password_file .* readable by others .* chmod 600"):
        Directory(d.settings, tmp_path / "inventory.yaml")
    with pytest.raises(DirectoryError, match="cn=Ops,dc=elsewhere not under base_dn"):
        directory(slapd, tmp_path, groups={**GROUPS, "cn=Ops,dc=elsewhere": "operator"})
    # Active Directory asks each mapped group on its own entry, wherever it is.
    ad = {"server": "active-directory", "user_template": None, "upn_suffix": UPN_SUFFIX}
    directory(slapd, tmp_path, groups={"cn=Ops,dc=elsewhere": "operator"}, **ad)
    with pytest.raises(DirectoryError, match="ca_file .*cannot read it"):
        directory(slapd, tmp_path, ca_file=str(tmp_path / "missing.pem"), search=None)


def test_an_empty_search_password_is_refused_and_spaces_are_the_passwords_own(
    slapd: Slapd, tmp_path: Path
) -> None:
    d = directory(slapd, tmp_path)
    assert d.password_file is not None
    for empty in ("", "\n", "  \n"):
        d.password_file.write_text(empty)
        with pytest.raises(DirectoryError, match="password_file .*: empty; .*RFC 4513 5.1.2"):
            Directory(d.settings, tmp_path / "inventory.yaml")
    # Emptied while the console runs: the re-check is refused, never an anonymous read.
    d.password_file.write_text(SEARCH_PASSWORD + "\n")
    running = Directory(d.settings, tmp_path / "inventory.yaml")
    d.password_file.write_text("\n")
    with pytest.raises(DirectoryDown, match="empty"):
        running.role_now(person_dn("ann"))
    # Only the trailing newline goes: a password with spaces around it is sent as it is.
    d.password_file.write_text(f" {SEARCH_PASSWORD}\n")
    with pytest.raises(DirectoryDown, match="refused the search account"):
        running.role_now(person_dn("ann"))
    d.password_file.write_text(f"{SEARCH_PASSWORD}\r\n")
    assert running.role_now(person_dn("ann")) == "operator"


def test_one_console_logs_in_against_one_directory(slapd: Slapd, tmp_path: Path) -> None:
    data = yaml.safe_load((Path(__file__).parents[1] / "unit/data/inventory.yaml").read_text())
    a = parse_inventory(yaml.safe_dump({**data, "console": {"ldap": settings(slapd, tmp_path)}}))
    b = a.model_copy(update={"pair": "other"})
    plain = a.model_copy(update={"pair": "plain", "console": None})
    where = str(tmp_path / "inventory.yaml")
    assert directory_of([plain], [where]) is None
    found = directory_of([plain, a, b], [where] * 3)
    assert found is not None and found.settings.url == slapd.ldaps_url
    assert a.console is not None and a.console.ldap is not None
    moved = a.console.ldap.model_copy(update={"url": slapd.ldap_url, "start_tls": True})
    c = b.model_copy(update={"console": a.console.model_copy(update={"ldap": moved})})
    with pytest.raises(DirectoryError, match="pairs demo and other name different directories"):
        directory_of([a, c], [where] * 2)


def request(session: dict[str, Any], method: str = "POST") -> Any:
    from starlette.requests import Request

    scope = {"type": "http", "method": method, "path": "/", "headers": [], "session": session}
    return Request(scope)


async def test_a_person_removed_from_the_group_loses_the_right_to_act(
    slapd: Slapd, tmp_path: Path
) -> None:
    accounts = tmp_path / "console-accounts.yaml"
    write_accounts(accounts, {"break-glass": ("correct horse battery", "operator")})
    gate = Gate(str(accounts), directory=directory(slapd, tmp_path))
    ann = gate.login("ann", PASSWORD, "192.0.2.1")
    assert ann is not None and ann.role == "operator"
    session: dict[str, Any] = {}
    other: dict[str, Any] = {}  # ann's session in another browser
    gate.open_session(request(session), ann)
    gate.open_session(request(other), ann)
    assert session["via"] == "directory"
    await gate.recheck(request(session))  # within the interval: nothing read
    assert gate.user(request(session)) == ann
    # Night-Shift taken out of AMSM-Operators: ann is no longer an operator through it.
    slapd.modify_members("AMSM-Operators", remove=group_dn("Night-Shift"))
    # Until the interval passes, a POST keeps the role read at login...
    assert gate.user(request(session)) == ann
    await asyncio.sleep(1.1)
    # ...after it, a POST that was not checked again is nobody, and the check refuses.
    assert gate.user(request(session)) is None
    assert gate.user(request(session, "GET")) == ann
    with pytest.raises(Refused) as e:
        await gate.recheck(request(session))
    assert e.value.kind == "login" and "ann is no longer in a directory group" in e.value.message
    assert session == {}  # the session is ended
    # Every other session of ann's ends with it; the break-glass account still logs in.
    assert gate.user(request(other, "GET")) is None
    assert gate.login("break-glass", "correct horse battery", "192.0.2.1") is not None
    # Back in the group: a new login, and a viewer moved up is read again too.
    slapd.modify_members("AMSM-Operators", add=group_dn("Night-Shift"))
    assert gate.login("ann", PASSWORD, "192.0.2.1") == ann


async def test_without_a_search_account_a_person_logs_in_again_to_act(
    slapd: Slapd, tmp_path: Path
) -> None:
    accounts = tmp_path / "console-accounts.yaml"
    write_accounts(accounts, {"break-glass": ("correct horse battery", "operator")})
    gate = Gate(str(accounts), directory=directory(slapd, tmp_path, search=None))
    vic = gate.login("vic", PASSWORD, "192.0.2.1")
    assert vic is not None and vic.role == "viewer"
    session: dict[str, Any] = {}
    gate.open_session(request(session), vic)
    await asyncio.sleep(1.1)
    with pytest.raises(Refused) as e:
        await gate.recheck(request(session))
    said = e.value.message
    assert e.value.kind == "login" and "names no search account" in said
    assert "every 1s" in said and "log in again" in said and session == {}


async def test_the_console_over_http(temporal: Client, lab_factory, slapd: Slapd, tmp_path) -> None:  # type: ignore[no-untyped-def]
    lab = await lab_factory(editors=1, ingest=0)
    lab.edit_inventory(console={"ldap": settings(slapd, tmp_path, recheck="2s")})
    pair = lab.inventory.pair
    async with running_worker(temporal, lab), console_server(lab) as server:
        url = server.url
        status, _, body = await asyncio.to_thread(form_login, url, "ann", "wrong")
        assert status == 401 and "wrong user name or password" in body
        status, _, body = await asyncio.to_thread(form_login, url, "nob", PASSWORD)
        assert status == 403 and "nob is in no directory group that gives a role" in body
        status, vic, _ = await asyncio.to_thread(form_login, url, "vic", PASSWORD)
        assert status == 303
        status, _, body = await asyncio.to_thread(refresh, url, pair, vic)
        assert status == 403 and "vic is a viewer" in body
        status, ann, _ = await asyncio.to_thread(form_login, url, "ann", PASSWORD)
        assert status == 303
        status, headers, body = await asyncio.to_thread(refresh, url, pair, ann)
        assert status == 303, body
        slapd.modify_members("AMSM-Operators", remove=group_dn("Night-Shift"))
        await asyncio.sleep(2.1)
        status, _, body = await asyncio.to_thread(refresh, url, pair, ann)
        assert status == 401 and "ann is no longer in a directory group" in body
        status, headers, _ = await asyncio.to_thread(http, url + "/", ann)
        assert status == 303 and headers["Location"] == "/login"


def refresh(url: str, pair: str, cookie: str) -> tuple[int, Any, str]:
    """POST the pair's Refresh button as the page's form sends it."""
    status, _, page = http(f"{url}/pairs/{pair}", cookie)
    assert status == 200, page
    m = re.search(r'name="csrf" value="([^"]+)"', page)
    assert m, page
    return http(f"{url}/pairs/{pair}/refresh", cookie, {"csrf": m.group(1)})


def test_the_console_refuses_to_start_on_a_directory_it_cannot_use(
    slapd: Slapd, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from console.main import main
    from lab.init import init_lab

    inv = init_lab(tmp_path / "lab", editors=1, ingest=0)
    data = yaml.safe_load(inv.read_text())
    data["console"] = {"ldap": settings(slapd, tmp_path, ca_file="secrets/no-such-ca.pem")}
    inv.write_text(yaml.safe_dump(data))
    assert main(["--inventory", str(inv)]) == 2
    err = capsys.readouterr().err
    assert "console.ldap.ca_file" in err and "no-such-ca.pem: cannot read it" in err
    # The path is the inventory's, and the search account's password file must be 0600.
    data["console"]["ldap"]["ca_file"] = str(slapd.ca_file)
    (tmp_path / "directory-search-password").chmod(0o640)
    inv.write_text(yaml.safe_dump(data))
    assert main(["--inventory", str(inv)]) == 2
    assert "readable by others (mode 640)" in capsys.readouterr().err


async def test_a_directory_login_is_never_the_local_account_of_the_same_name(
    slapd: Slapd, tmp_path: Path
) -> None:
    # A break-glass account named as a directory person: the person's directory login
    # (their directory password) is the directory's viewer, not the local operator.
    accounts = tmp_path / "console-accounts.yaml"
    write_accounts(accounts, {"vic": ("correct horse battery", "operator")})
    gate = Gate(str(accounts), directory=directory(slapd, tmp_path))
    vic = gate.login("vic", PASSWORD, "192.0.2.1")
    assert vic is not None and vic.role == "viewer" and vic.hash == ""
    session: dict[str, Any] = {}
    gate.open_session(request(session), vic)
    seen = gate.user(request(session, "GET"))
    assert seen is not None and seen.role == "viewer", seen
    # The local account's own login is the local account.
    local = gate.login("vic", "correct horse battery", "192.0.2.1")
    assert local is not None and local.role == "operator" and local.hash
    mine: dict[str, Any] = {}
    gate.open_session(request(mine), local)
    assert mine["via"] == "local" and gate.user(request(mine, "GET")) == local
    # A session that does not say where it logged in is no one's.
    assert gate.user(request({"user": "vic"}, "GET")) is None
    # The directory's vic acts only after the re-check: the local account of the same
    # name does not skip it.
    slapd.modify_members("AMSM-Viewers", add=person_dn("nob"))  # a groupOfNames is never empty
    slapd.modify_members("AMSM-Viewers", remove=person_dn("vic"))
    await asyncio.sleep(1.1)
    with pytest.raises(Refused) as e:
        await gate.recheck(request(session))
    assert e.value.kind == "login" and session == {}
    assert gate.user(request(mine, "GET")) == local  # the local account's session stays
