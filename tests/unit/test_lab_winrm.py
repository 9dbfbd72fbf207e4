"""`lab init` mixes SSH and WinRM; the WinRM pieces that need no server."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from activities.drivers import powershell as ps
from activities.drivers.winrm import command_arguments, pywinrm_transport
from client.commands.inventory import check as inventory_check
from inventory.load import load_inventory
from lab import winrm as lab_winrm
from lab.init import init_lab


@pytest.fixture(scope="module")
def lab_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("lab")
    init_lab(d, editors=3, ingest=2, smartbins=2, reboot_seconds=0.3)
    return d


def test_lab_init_mixes_transports(lab_dir: Path) -> None:
    inv = load_inventory(lab_dir / "inventory.yaml")
    hosts = {h.host: h for _, h in inv.all_hosts()}
    web = {n: h.winrm_settings for n, h in hosts.items() if h.transport == "winrm"}
    assert set(web) == {"cp-01", "browse-srv", "sb-y1", "sb-y2", "ED-02", "IN-01"}
    assert {(w.scheme, w.auth) for w in web.values()} == {
        ("https", "ntlm"),
        ("https", "basic"),
        ("http", "basic"),
    }
    assert [n for n, w in web.items() if w.scheme == "http"] == ["browse-srv"]
    assert all(w.ca_file == "winrm-ca.pem" for w in web.values() if w.scheme == "https")
    assert all(hosts[n].credentials == "lab-winrm" for n in web)
    assert all(h.credentials == "lab-admin" for n, h in hosts.items() if n not in web)
    # Every listener has its own port.
    ports = [h.port for h in hosts.values()] + [w.endpoint_port for w in web.values()]
    assert len(set(ports)) == len(ports)
    cred = inv.credentials["lab-winrm"]
    assert (cred.username, cred.password_file) == ("Administrator", "secrets/winrm-password")
    pw = lab_dir / "secrets" / "winrm-password"
    assert stat.S_IMODE(pw.stat().st_mode) == 0o600 and len(pw.read_text().strip()) >= 24


def test_lab_certificates_are_signed_by_the_lab_ca(lab_dir: Path) -> None:
    ca = x509.load_pem_x509_certificate((lab_dir / "winrm-ca.pem").read_bytes())
    cert_path, key_path = lab_winrm.cert_paths(lab_dir, "ED-02")
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert cert.issuer == ca.subject
    public = ca.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    cert.verify_directly_issued_by(ca)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["ed-02"]
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600


def test_inventory_check_warns_about_plain_http(
    lab_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert inventory_check(str(lab_dir / "inventory.yaml")) == 0
    out = capsys.readouterr().out
    assert "warning: browse[0].host (browse-srv): WinRM over plain HTTP (allow_http: true)" in out
    assert out.count("plain HTTP") == 1 and "ok: pair lab" in out
    assert "warning: no `operators:` listed" in out  # the lab lets any login act


def test_the_driver_sends_the_ssh_command_line() -> None:
    text = ps.script(ps.boot_info())
    assert " ".join(["powershell.exe", *command_arguments(text)]) == ps.encoded_command(text)
    assert command_arguments(text)[:-1] == [
        "-NoProfile",
        "-NonInteractive",
        "-ExecutionPolicy",
        "Bypass",
        "-EncodedCommand",
    ]
    assert pywinrm_transport("http", "basic") == "plaintext"
    assert pywinrm_transport("https", "basic") == "basic"
    assert pywinrm_transport("https", "ntlm") == "ntlm"


def test_basic_logon_and_bad_envelopes() -> None:
    users = lab_winrm.Users("Administrator", "s3cret")

    def basic(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    assert users.check_basic(basic("Administrator:s3cret")) == "Administrator"
    assert users.check_basic(basic("administrator:s3cret")) == "administrator"
    assert users.check_basic(basic("Administrator:wrong")) is None
    assert users.check_basic(basic("Guest:s3cret")) is None
    assert users.check_basic("not base64!") is None
    with pytest.raises(lab_winrm.Fault) as e:
        lab_winrm.parse_request(b"<not xml")
    assert e.value.code == lab_winrm.FAULT_BAD_ENVELOPE
    fault = lab_winrm.fault_envelope(e.value, "uuid:1", "cp-01").decode()
    assert 'Code="2150858817"' in fault and "<a:RelatesTo>uuid:1</a:RelatesTo>" in fault
