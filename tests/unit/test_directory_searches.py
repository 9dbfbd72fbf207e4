"""What console/directory.py asks an Active Directory (docs/site/directory-login.md): the
in-chain rule cannot run on the tests' slapd (OpenLDAP has no
LDAP_MATCHING_RULE_IN_CHAIN), so the searches themselves are checked here, against a
recording stand-in for the connection (pure logic: which base, scope and filter)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

ldap = pytest.importorskip("ldap")

from console.directory import Directory, dn_key  # noqa: E402
from inventory.models import ConsoleLdap  # noqa: E402

OPS = "cn=AMSM-Operators,ou=groups,dc=example,dc=org"
VIEW = "cn=AMSM-Viewers,ou=groups,dc=example,dc=org"
GONE = "cn=Old,ou=groups,dc=example,dc=org"


class Recording:
    """A connection that answers each base search from `members` (group DN: whether the
    person is in it, through any chain) and records what was asked."""

    def __init__(self, members: dict[str, bool]) -> None:
        self.members, self.asked = members, []  # type: ignore[var-annotated]

    def search_s(self, base: str, scope: int, flt: str, attrs: list[str]) -> Any:
        self.asked.append((base, scope, flt, attrs))
        if base not in self.members:
            raise ldap.NO_SUCH_OBJECT({"desc": "No such object"})
        return [(base, {})] if self.members[base] else []


def ad(tmp_path: Path, groups: dict[str, str]) -> Directory:
    ca = tmp_path / "ca.pem"
    ca.write_text("not read here")
    settings = ConsoleLdap(
        url="ldaps://dc1.example.org",
        ca_file=str(ca),
        upn_suffix="example.org",
        base_dn="dc=example,dc=org",
        server="active-directory",
        groups=groups,  # type: ignore[arg-type]
    )
    return Directory(settings, tmp_path / "inventory.yaml")


def test_only_the_mapped_groups_are_asked_each_on_its_own_entry(tmp_path: Path) -> None:
    d = ad(tmp_path, {OPS: "operator", VIEW: "viewer", GONE: "viewer"})
    person = "cn=Smith\\, Ann (ops),ou=people,dc=example,dc=org"
    conn = Recording({OPS: False, VIEW: True})
    assert d._role(conn, person) == "viewer"
    # One base search per mapped group, nothing over the whole base_dn; the person's DN
    # escaped as a filter value (RFC 4515: parentheses as \28 \29, backslash as \5c).
    flt = "(member:1.2.840.113556.1.4.1941:=cn=Smith\\5c, Ann \\28ops\\29,ou=people,dc=example,dc=org)"
    assert conn.asked == [(g, ldap.SCOPE_BASE, flt, ["1.1"]) for g in (OPS, VIEW, GONE)]
    assert d._role(Recording({OPS: True, VIEW: True}), person) == "operator"
    assert d._role(Recording({OPS: False, VIEW: False}), person) is None


def test_dns_compare_as_dns() -> None:
    assert dn_key("CN=AMSM-Viewers, OU=Groups,DC=example,DC=org") == dn_key(VIEW.upper())
    assert dn_key("cn=Night\\, Late,dc=x") == dn_key("cn=Night\\2C Late,dc=x")
    assert dn_key("cn=Night\\, Late,dc=x") != dn_key("cn=Night,cn=Late,dc=x")
    assert dn_key("not a dn") == "not a dn"
