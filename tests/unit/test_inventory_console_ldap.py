"""The inventory's `console.ldap` (docs/site/directory-login.md): directory login over TLS
only, one way to name the person, durations with their unit; each problem named with its
path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from inventory.load import InventoryError, load_inventory, parse_inventory

DATA = Path(__file__).parent / "data" / "inventory.yaml"

LDAP = {
    "url": "ldaps://dc1.example.org",
    "ca_file": "secrets/directory-ca.pem",
    "user_template": "uid={user},ou=people,dc=example,dc=org",
    "base_dn": "dc=example,dc=org",
    "server": "openldap",
    "groups": {
        "cn=AMSM-Operators,ou=groups,dc=example,dc=org": "operator",
        "cn=AMSM-Viewers,ou=groups,dc=example,dc=org": "viewer",
    },
    "recheck": "5m",
}


def with_ldap(**changes: Any) -> dict[str, Any]:
    data = yaml.safe_load(DATA.read_text())
    ldap = {**LDAP, **changes}
    data["console"] = {"ldap": {k: v for k, v in ldap.items() if v is not None}}
    return data


def problems(data: object) -> list[str]:
    with pytest.raises(InventoryError) as e:
        parse_inventory(yaml.safe_dump(data), "inv.yaml")
    return e.value.problems


def one(**changes: Any) -> str:
    found = problems(with_ldap(**changes))
    assert len(found) == 1, found
    return found[0]


def test_a_directory_over_tls_loads_and_is_written_back_as_read() -> None:
    inv = parse_inventory(yaml.safe_dump(with_ldap()), "inv.yaml")
    assert inv.console is not None and inv.console.ldap is not None
    ldap = inv.console.ldap
    assert (
        ldap.recheck == 300
        and ldap.groups["cn=AMSM-Viewers,ou=groups,dc=example,dc=org"] == "viewer"
    )
    assert ldap.search is None and not ldap.start_tls
    again = parse_inventory(yaml.safe_dump(inv.model_dump(mode="json")), "inv.yaml")
    assert again.console == inv.console
    # StartTLS on ldap://, Active Directory's UPN, a search account's password file.
    ad = with_ldap(
        url="ldap://dc1.example.org:389",
        start_tls=True,
        user_template=None,
        upn_suffix="example.org",
        server="active-directory",
        search={"bind_dn": "cn=amsm,ou=services,dc=example,dc=org", "password_file": "pw"},
    )
    ldap = parse_inventory(yaml.safe_dump(ad), "inv.yaml").console.ldap  # type: ignore[union-attr]
    assert ldap is not None and ldap.upn_suffix == "example.org" and ldap.search is not None


def test_an_inventory_without_it_has_no_directory() -> None:
    assert load_inventory(DATA).console is None


def test_plain_ldap_is_refused() -> None:
    said = one(url="ldap://dc1.example.org")
    assert said.startswith("console.ldap:") and "plain LDAP sends passwords in the clear" in said
    assert "ldaps://" in said and "start_tls: true" in said
    assert "StartTLS is for ldap:// only" in one(start_tls=True)


def test_bad_values_say_what_is_allowed() -> None:
    assert one(url="http://dc1").startswith("console.ldap.url:")
    assert "LDAP URL" in one(url="ldaps://dc1/dc=example?cn")
    said = one(user_template="uid=ann,ou=people,dc=example,dc=org")
    assert said.startswith("console.ldap.user_template:") and "{user} once" in said
    both = one(upn_suffix="example.org")
    assert "give one of user_template" in both and "upn_suffix" in both
    assert "give one of" in one(user_template=None)
    assert "not a valid domain" in one(user_template=None, upn_suffix="exa mple")
    assert one(base_dn="example.org").startswith("console.ldap.base_dn:")
    assert "'openldap'" in one(server="novell")
    assert one(groups={}).startswith("console.ldap.groups:")
    assert "'operator'" in one(groups={"cn=AMSM-Operators,dc=example,dc=org": "admin"})
    twice = {"cn=Ops,dc=example,dc=org": "operator", "CN=OPS,DC=example,DC=org": "viewer"}
    assert "listed twice" in one(groups=twice)
    said = one(recheck=300)
    assert said.startswith("console.ldap.recheck:") and "with its unit" in said
    assert one(recheck="2d").startswith("console.ldap.recheck:")


def test_groups_are_named_by_their_whole_dn() -> None:
    # A cn alone would match a group of that name anywhere under base_dn (R2).
    said = one(groups={"AMSM-Operators": "operator"})
    assert said.startswith("console.ldap.groups:") and "not a group's whole DN" in said
    assert "anywhere under base_dn" in said and "docs/site/directory-login.md" in said
    for bad in ("cn=Ops,,dc=example", "cn=Ops\\", "cn=Ops,dc=example\n", "=Ops,dc=example"):
        assert "not a group's whole DN" in one(groups={bad: "operator"}), bad
    # Escaped commas (RFC 4514) and a space after a comma are DNs.
    ok = {"cn=Ops\\, night,ou=groups,dc=example,dc=org": "operator", "cn=V, dc=example": "viewer"}
    inv = parse_inventory(yaml.safe_dump(with_ldap(groups=ok)), "inv.yaml")
    assert inv.console is not None and inv.console.ldap is not None
    assert inv.console.ldap.groups == ok
    assert (
        parse_inventory(
            yaml.safe_dump(with_ldap(base_dn="ou=a\\,b,dc=example,dc=org")), "inv.yaml"
        ).console
        is not None
    )


def test_a_search_account_names_a_file_never_a_password() -> None:
    found = problems(
        with_ldap(search={"bind_dn": "cn=amsm,dc=example,dc=org", "password": "hunter2"})
    )
    assert any(p.startswith("console.ldap.search.password") for p in found), found
    assert "not a valid DN" in one(search={"bind_dn": "amsm", "password_file": "pw"})


def test_unknown_fields_are_refused() -> None:
    assert one(bind_password="x").startswith("console.ldap.bind_password:")
