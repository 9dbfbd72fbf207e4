"""`amsm auth init` (docs/site/production.md, Lock-down): the files it writes, read back
with `cryptography` and PyYAML: the server config holds the lock-down, the certificates
chain to the CA, each key is its certificate's, the JWKS holds the signing key's public
half and every token verifies against it with the role its holder should have."""

from __future__ import annotations

import base64
import json
import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from cryptography.x509.oid import ExtendedKeyUsageOID

from client import cli
from client.commands import auth_config
from client.session import EXIT_USAGE
from wire.connection import ConnectionConfigError, api_key


def init(out: Path, *more: str) -> int:
    return cli.main(["auth", "init", "--site", "lab", "--out", str(out), *more])


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("auth") / "site"
    assert init(out, "--engineer", "ann", "--server-name", "temporal.example.net") == 0
    return out


def signs(out: Path) -> Path:
    """Where auth init puts what signs without --signing-out: beside --out."""
    return out.with_name(f"{out.name}-signing")


def b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_the_server_config_locks_the_frontend_down(made: Path) -> None:
    text = (made / "temporal-server.yaml").read_text()
    assert text.startswith("# enable-template\n")  # the server's own templating, for env
    config: dict[str, Any] = yaml.safe_load(text)
    tls = config["global"]["tls"]
    for group, ca in (("frontend", "ca.pem"), ("internode", "internode-ca.pem")):
        server = tls[group]["server"]
        assert server["requireClientAuth"] is True
        assert server["clientCaFiles"] == [f"{auth_config.MOUNT}/{ca}"], group
        assert tls[group]["client"]["rootCaFiles"] == [f"{auth_config.MOUNT}/{ca}"], group
    authz = config["global"]["authorization"]
    assert authz["authorizer"] == "default" and authz["claimMapper"] == "default"
    assert authz["permissionsClaimName"] == "permissions"
    assert authz["jwtKeyProvider"]["keySourceURIs"] == [auth_config.JWKS_URI]
    assert "internal-frontend" in config["services"] and "publicClient" not in config
    # the internal frontend serves no HTTP API (CVE-2026-87858's conditions need one)
    assert config["services"]["internal-frontend"]["rpc"].get("httpPort", 0) == 0
    # every file the config names is one auth init wrote
    named = [tls[g]["server"][f] for g in tls for f in ("certFile", "keyFile")]
    for path in named:
        assert (made / path.removeprefix(auth_config.MOUNT + "/")).exists(), path
    # the database password is read from the environment, never written
    assert "POSTGRES_PWD" in config["persistence"]["datastores"]["default"]["sql"]["password"]


def test_the_web_ui_is_read_only(made: Path) -> None:
    env = dict(
        line.split("=", 1)
        for line in (made / "temporal-ui.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert env["TEMPORAL_DISABLE_WRITE_ACTIONS"] == "true"
    assert env["TEMPORAL_TLS_CERT"] == f"{auth_config.MOUNT}/ui.pem"


def test_the_certificates_chain_to_the_ca_and_each_key_is_its_own(made: Path) -> None:
    ca = x509.load_pem_x509_certificate((made / "ca.pem").read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for name in ("temporal", "worker", "console", "ui", "admin", "engineer-ann"):
        cert = x509.load_pem_x509_certificate((made / f"{name}.pem").read_bytes())
        cert.verify_directly_issued_by(ca)
        key = load_pem_private_key((made / f"{name}-key.pem").read_bytes(), password=None)
        assert key.public_key() == cert.public_key(), name
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        # the server's certificate is also its services' client certificate (internode)
        want = [ExtendedKeyUsageOID.CLIENT_AUTH]
        if name == "temporal":
            want.insert(0, ExtendedKeyUsageOID.SERVER_AUTH)
        assert list(usage) == want, name
        key_usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
        assert key_usage.critical and key_usage.value.digital_signature, name
        assert not key_usage.value.key_cert_sign and not key_usage.value.key_encipherment
    server = x509.load_pem_x509_certificate((made / "temporal.pem").read_bytes())
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"temporal", "localhost", "temporal.example.net"} <= set(
        san.get_values_for_type(x509.DNSName)
    )


def test_no_client_certificate_passes_between_the_servers_services(made: Path) -> None:
    """The internal frontend makes every caller it takes a system admin, history and
    matching check no role: only the internode CA's one certificate passes there, and
    no certificate of the site's CA (a program's, an engineer's, the Web UI's) does."""
    site = x509.load_pem_x509_certificate((made / "ca.pem").read_bytes())
    node_ca = x509.load_pem_x509_certificate((made / "internode-ca.pem").read_bytes())
    assert node_ca.subject != site.subject and node_ca.public_key() != site.public_key()
    node = x509.load_pem_x509_certificate((made / "internode.pem").read_bytes())
    node.verify_directly_issued_by(node_ca)
    key = load_pem_private_key((made / "internode-key.pem").read_bytes(), password=None)
    assert key.public_key() == node.public_key()
    san = node.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [auth_config.INTERNODE_NAME]
    for name in ("temporal", "worker", "console", "ui", "admin", "engineer-ann"):
        cert = x509.load_pem_x509_certificate((made / f"{name}.pem").read_bytes())
        with pytest.raises((ValueError, InvalidSignature)):
            cert.verify_directly_issued_by(node_ca)
    with pytest.raises((ValueError, InvalidSignature)):
        node.verify_directly_issued_by(site)


def test_the_jwks_holds_the_signing_key_and_every_token_verifies(made: Path) -> None:
    signing = load_pem_private_key((signs(made) / "jwt-key.pem").read_bytes(), password=None)
    assert isinstance(signing, rsa.RSAPrivateKey)
    (jwk,) = json.loads((made / "jwks.json").read_text())["keys"]
    public = rsa.RSAPublicNumbers(
        int.from_bytes(b64(jwk["e"]), "big"), int.from_bytes(b64(jwk["n"]), "big")
    ).public_key()
    assert public == signing.public_key()
    want = {
        "worker": ["default:write"],
        "console": ["default:write"],
        "engineer-ann": ["default:read"],
        # the namespace's admin (RegisterNamespace, AddSearchAttributes), not the system's
        "admin": ["default:admin"],
    }
    for name, permissions in want.items():
        head, body, sig = (made / f"{name}.jwt").read_text().split(".")
        header, claims = json.loads(b64(head)), json.loads(b64(body))
        assert header == {"alg": "RS256", "typ": "JWT", "kid": jwk["kid"]}
        public.verify(b64(sig), f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
        assert claims["sub"] == name and claims["permissions"] == permissions
        assert claims["exp"] > claims["iat"]
        # back-dated (a server's clock a little behind), as the certificates are
        assert 4 * 60 <= time.time() - claims["iat"] <= 10 * 60, claims["iat"]
    assert not (made / "ui.jwt").exists()


def test_keys_and_tokens_are_the_owners_alone(made: Path) -> None:
    for path in [*made.rglob("*"), *signs(made).rglob("*")]:
        if path.is_file():
            mode = stat.S_IMODE(path.stat().st_mode)
            secret = path.name.endswith(("-key.pem", ".jwt"))
            assert mode == (0o600 if secret else 0o644), (path.name, oct(mode))
    assert stat.S_IMODE(signs(made).stat().st_mode) == 0o700


def test_what_signs_is_written_beside_the_folder_the_containers_mount(made: Path) -> None:
    """The CAs' keys and the JWT signing key never sit in --out (docker-compose.yml
    mounts files of it): in OUT-signing beside it, or --signing-out."""
    assert sorted(p.name for p in signs(made).iterdir()) == [
        "ca-key.pem",
        "internode-ca-key.pem",
        "jwt-key.pem",
    ]
    assert not (made / "signing").exists()
    assert not [p for p in made.rglob("*") if p.name.endswith(("ca-key.pem", "jwt-key.pem"))]


def test_the_signing_folder_is_never_inside_the_mounted_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for signing in (tmp_path / "a" / "signing", tmp_path / "a"):
        assert init(tmp_path / "a", "--signing-out", str(signing)) == EXIT_USAGE
        assert "overlaps --out" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()
    assert init(tmp_path / "b", "--signing-out", str(tmp_path / "keys"), "--json") == 0
    said = json.loads(capsys.readouterr().out)
    assert said["signing_out"] == str(tmp_path / "keys") and "jwt-key.pem" in said["signing_files"]
    assert all(not f.startswith("signing") for f in said["files"])
    assert (tmp_path / "keys" / "ca-key.pem").exists()
    # `--out .`: beside the current folder, by its name
    (tmp_path / "c").mkdir()
    monkeypatch.chdir(tmp_path / "c")
    assert cli.main(["auth", "init", "--site", "lab", "--out", "."]) == 0
    assert (tmp_path / "c-signing" / "jwt-key.pem").exists()


def test_nothing_is_overwritten(made: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = {p: p.read_bytes() for p in made.rglob("*") if p.is_file()}
    assert init(made) == 1
    assert "never overwrites" in capsys.readouterr().err
    assert before == {p: p.read_bytes() for p in made.rglob("*") if p.is_file()}


def test_bad_input_is_a_usage_error_naming_what_is_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert init(tmp_path / "a", "--engineer", "ann smith") == EXIT_USAGE
    assert "--engineer 'ann smith'" in capsys.readouterr().err
    assert init(tmp_path / "b", "--days", "0") == EXIT_USAGE
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_never_inside_a_git_work_tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.system(f"git init -q {tmp_path}")
    assert init(tmp_path / "auth") == EXIT_USAGE
    assert "inside a Git work tree" in capsys.readouterr().err
    assert not (tmp_path / "auth").exists()


def test_programs_read_their_token_from_a_file(
    made: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TEMPORAL_API_KEY_FILE (docker-compose.yml gives each program its token so): the
    file's token, TEMPORAL_API_KEY first when both are set, an empty file refused."""
    monkeypatch.delenv("TEMPORAL_API_KEY", raising=False)
    monkeypatch.setenv("TEMPORAL_API_KEY_FILE", str(made / "worker.jwt"))
    assert api_key() == (made / "worker.jwt").read_text().strip()
    monkeypatch.setenv("TEMPORAL_API_KEY", "from-the-environment")
    assert api_key() == "from-the-environment"
    monkeypatch.delenv("TEMPORAL_API_KEY")
    (tmp_path / "empty.jwt").write_text("\n")
    monkeypatch.setenv("TEMPORAL_API_KEY_FILE", str(tmp_path / "empty.jwt"))
    with pytest.raises(ConnectionConfigError, match="empty.jwt is empty"):
        api_key()


def test_the_web_ui_reads_only_with_its_users_tokens(
    made: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The UI's certificate alone maps to no claims (denied): its users' tokens, from an
    identity provider whose JWKS --ui-jwks-uri adds to the server's keySourceURIs."""
    assert "none yet: amsm auth init --ui-jwks-uri" in (made / "temporal-ui.env").read_text()
    idp = "https://idp.example/realms/facility/protocol/openid-connect/certs"
    assert init(tmp_path / "a", "--namespace", "studio", "--ui-jwks-uri", idp) == 0
    config = yaml.safe_load((tmp_path / "a" / "temporal-server.yaml").read_text())
    sources = config["global"]["authorization"]["jwtKeyProvider"]["keySourceURIs"]
    assert sources == [auth_config.JWKS_URI, idp]
    env = (tmp_path / "a" / "temporal-ui.env").read_text()
    assert idp in env and 'permissions: ["studio:read"]' in env
    for bad in ("ftp://idp.example/certs", "idp.example/certs", "https://"):
        assert init(tmp_path / "b", "--ui-jwks-uri", bad) == EXIT_USAGE
        assert f"--ui-jwks-uri {bad!r}: an http(s) URL" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
