"""The console's accounts file (console/accounts.py): hashes, refusals, roles."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from console.accounts import Account, AccountsError, load_accounts, role_on, write_accounts


def test_a_written_file_verifies_its_passwords_and_nothing_else(tmp_path: Path) -> None:
    path = tmp_path / "accounts.yaml"
    write_accounts(
        path, {"ann": ("correct horse battery", "operator"), "vic": ("pw-vic-1234567", "viewer")}
    )
    assert os.stat(path).st_mode & 0o777 == 0o600
    text = path.read_text()
    assert "correct horse" not in text and "$argon2id$" in text
    accounts = load_accounts(path)
    ann = accounts.verify("ANN", "correct horse battery")  # names are not case-sensitive
    assert ann is not None and (ann.name, ann.role) == ("ann", "operator")
    assert accounts.verify("ann", "wrong") is None
    assert accounts.verify("nobody", "correct horse battery") is None
    assert accounts.verify("vic", "pw-vic-1234567").role == "viewer"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("accounts: {}\n", "no `accounts:`"),
        ("accounts:\n  ann: {hash: plain}\n", "needs `hash:` an Argon2 hash"),
        ("accounts:\n  ann: {hash: $argon2id$x, role: admin}\n", "role 'admin'; allowed"),
        ("accounts:\n  'a;b': {hash: $argon2id$x}\n", "not a user name"),
        ("[1, 2\n", "not YAML"),
    ],
)
def test_a_bad_file_is_refused_saying_what_and_where(tmp_path: Path, body: str, says: str) -> None:
    path = tmp_path / "accounts.yaml"
    path.write_text(body)
    path.chmod(0o600)
    with pytest.raises(AccountsError, match="console accounts file") as e:
        load_accounts(path)
    assert says in str(e.value)


def test_a_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "accounts.yaml"
    write_accounts(path, {"ann": ("correct horse battery", "operator")})
    path.chmod(0o644)
    with pytest.raises(AccountsError, match="readable by others.*chmod 600"):
        load_accounts(path)


def test_the_inventory_decides_and_an_accounts_role_only_lowers() -> None:
    ann, vic = Account("ann", "h"), Account("vic", "h", role="viewer")
    assert role_on(ann, ["ann"], []) == "operator"
    assert role_on(ann, ["bob"], ["ann"]) == "viewer"
    assert role_on(ann, ["bob"], []) is None  # listed nowhere on a pair that lists operators
    assert role_on(ann, [], ["vic"]) is None  # viewers listed: only they read
    assert role_on(ann, [], []) == "operator"  # an inventory that lists nobody: anyone acts
    assert role_on(vic, [], []) == "viewer"  # ... but the account is capped
    assert role_on(vic, ["vic"], []) == "viewer"
    assert role_on(Account("ANN", "h"), ["ann"], []) == "operator"
