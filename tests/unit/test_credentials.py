"""Errors about credentials carry fixed texts: never a character, a byte or a position of
a secret (issue 14, item 13), and ODBC values are braced as [MS-ODBCSTR] says."""

from __future__ import annotations

from pathlib import Path

import pyodbc
import pytest

from activities.drivers import powershell as ps
from activities.drivers.credentials import CredentialStore, Secret
from activities.drivers.dsm import DsmDriver, odbc_value
from activities.drivers.errors import (
    AuthenticationFailed,
    ConfigurationError,
    CredentialError,
    DeviceError,
    DriverError,
)
from activities.drivers.winrm import WinRmHostDriver
from activities.support import to_application_error
from inventory.load import load_inventory
from inventory.models import Dsm, Host, WinRm
from lab.dsm import create_dsm, initial_assets
from lab.init import init_lab


@pytest.fixture(scope="module")
def lab_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("lab")
    init_lab(d, editors=1, ingest=0, smartbins=1, reboot_seconds=0.3)
    return d


def store(lab_dir: Path) -> CredentialStore:
    return CredentialStore(load_inventory(lab_dir / "inventory.yaml"), lab_dir / "inventory.yaml")


def test_a_password_file_that_is_not_utf8_names_no_byte(lab_dir: Path) -> None:
    pw = lab_dir / "secrets" / "winrm-password"
    before = pw.read_bytes()
    try:
        pw.write_bytes(b"caf\xe9-s3cret-\xff")  # Latin-1, not UTF-8
        with pytest.raises(CredentialError) as e:
            store(lab_dir).resolve("lab-winrm")
        text = str(e.value)
        assert text == (
            f"credentials 'lab-winrm': {pw} is not UTF-8 text; write the password in UTF-8"
        )
        assert "0xe9" not in text and "position" not in text and "s3cret" not in text
        # What an activity would record: the same fixed text.
        assert to_application_error(e.value).message == text
    finally:
        pw.write_bytes(before)
    assert store(lab_dir).resolve("lab-winrm").password == before.decode().strip()


def test_a_password_env_that_is_not_utf8_is_refused(
    lab_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inv = load_inventory(lab_dir / "inventory.yaml")
    cred = inv.credentials["lab-winrm"]
    inv.credentials["lab-winrm"] = cred.model_copy(
        update={"password_file": None, "password_env": "AMSM_TEST_PW"}
    )
    # What os.environ holds for the bytes b"caf\xe9" (PEP 383 surrogateescape).
    monkeypatch.setenv("AMSM_TEST_PW", b"caf\xe9".decode("utf-8", "surrogateescape"))
    with pytest.raises(CredentialError) as e:
        CredentialStore(inv, lab_dir / "inventory.yaml").resolve("lab-winrm")
    assert str(e.value) == (
        "credentials 'lab-winrm': environment variable AMSM_TEST_PW is not UTF-8 text"
    )


def test_a_unicode_error_never_reaches_the_history_with_its_text() -> None:
    err = UnicodeEncodeError("latin-1", "pass€word", 4, 5, "ordinal not in range(256)")
    app = to_application_error(err)
    assert app.message == "a text could not be encoded or decoded (UnicodeEncodeError)"
    assert "€" not in app.message and "position" not in app.message and app.non_retryable


def winrm_host(auth: str) -> Host:
    return Host(
        host="ED-02",
        address="127.0.0.1",
        transport="winrm",
        winrm=WinRm(scheme="https", auth=auth),  # type: ignore[arg-type]
        credentials="lab-winrm",
    )


def test_winrm_basic_refuses_a_password_outside_latin1_with_a_fixed_text() -> None:
    secret = Secret("Administrator", None, "pässwörd-€-s3cret")
    with pytest.raises(AuthenticationFailed) as e:
        WinRmHostDriver(winrm_host("basic"), secret, None, 1.0, 5.0)
    text = str(e.value)
    assert text == (
        "ED-02: credentials 'lab-winrm' cannot be sent with WinRM Basic auth: the user name "
        "or password has characters outside Latin-1 (use auth: ntlm)"
    )
    # Latin-1 passwords are fine for Basic; NTLM takes any (UTF-16).
    WinRmHostDriver(winrm_host("basic"), Secret("Administrator", None, "pässwörd"), None, 1, 5)
    driver = WinRmHostDriver(winrm_host("ntlm"), secret, None, 1.0, 5.0)
    # Should the transport still fail to encode them, its text stays out of the error.
    err = driver._translate(UnicodeEncodeError("utf-16-le", "x\udce9", 1, 2, "surrogates"))
    assert isinstance(err, AuthenticationFailed)
    assert str(err) == (
        "ED-02: user 'Administrator': the credentials could not be encoded for ntlm over https"
    )


def test_odbc_values_are_braced_and_right_braces_doubled() -> None:
    assert odbc_value("plain") == "{plain}"
    assert odbc_value("a}b") == "{a}}b}"
    assert odbc_value("{x;y}") == "{{x;y}}}"
    with pytest.raises(ValueError, match="NUL"):
        odbc_value("a\x00b")


def test_odbc_credentials_cannot_add_keywords(tmp_path: Path) -> None:
    real = tmp_path / "dsm-x.db"
    create_dsm(real, "dsm-x", "main", "stopped", "none", initial_assets(3))
    odbc = f"Driver=SQLite3;Database={real};Timeout=5000"
    # SQL Server's driver follows [MS-ODBCSTR]: braced, `}` doubled, `;` inside is data.
    sql = Dsm(host="dsm-x", profile="sqlserver", odbc=odbc, sqlserver={"database": "Aurora"})
    evil = "x};JournalMode=DELETE;{"
    conn = DsmDriver(sql, "X", Secret("am}sm", None, evil), timeout=5)._conn_str()
    assert conn.endswith("UID={am}}sm};PWD={x}};JournalMode=DELETE;{}")
    # The lab's SQLite3 driver does not honour braces: such a password is refused (fixed
    # text), and a `}` without `;` still reaches the DSM it names.
    lab = Dsm(host="dsm-x", profile="lab", odbc=odbc)
    with pytest.raises(AuthenticationFailed) as e:
        DsmDriver(lab, "X", Secret("amsm", None, evil), timeout=5).read()
    assert str(e.value) == (
        "dsm-x: the user name or password holds a ';', which the lab profile's ODBC driver "
        "would read as the end of the value"
    )
    status = DsmDriver(lab, "X", Secret("amsm", None, "{x}}y}"), timeout=5).read()
    assert status.mode == "main" and status.asset_count == 3
    with pytest.raises(AuthenticationFailed, match="holds a NUL character"):
        DsmDriver(lab, "X", Secret("amsm", None, "a\x00b"), timeout=5).read()


def test_an_odbc_login_refusal_has_a_fixed_text(tmp_path: Path) -> None:
    dsm = Dsm(host="dsm-x", profile="lab", odbc="Driver=SQLite3;Database=/nonexistent/x.db")
    driver = DsmDriver(dsm, "X", Secret("amsm", None, "s3cret}pw"), timeout=5)
    err = driver._translate(
        pyodbc.Error("28000", "[Microsoft][ODBC] Login failed; PWD={s3cret}}pw} was wrong")
    )
    assert isinstance(err, AuthenticationFailed)
    assert str(err) == "dsm-x: login refused (28000) for user 'amsm'"
    other = driver._translate(pyodbc.Error("42000", "near PWD={s3cret}}pw}: syntax error"))
    assert "s3cret" not in str(other) and "***" in str(other)


def test_credential_and_unsafe_value_errors_are_configuration_errors_of_the_driver_tree() -> None:
    for err in (
        CredentialError("credentials 'x' are not defined"),
        ps.UnsafeValue("an empty list"),
    ):
        assert isinstance(err, ConfigurationError) and isinstance(err, DriverError)
        assert not isinstance(err, DeviceError)  # it names no host
        app = to_application_error(err)
        assert (app.type, app.non_retryable, app.message) == ("ConfigurationError", True, str(err))
    assert isinstance(ps.UnsafeValue("x"), ValueError)  # as it always was
    with pytest.raises(ps.UnsafeValue):
        ps.q("a\x00b")
