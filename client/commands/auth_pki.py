"""What `amsm auth init` makes (docs/site/production.md, "Lock-down"): a site's own CA,
the Temporal frontend's certificate, one client certificate per program or person, the
RSA key that signs their JWTs, the JWKS file the server's JWT claim mapper reads (from a
file: no internet at a facility), and the JWTs themselves. Pure crypto over
`cryptography`; the files are written by `auth.py`."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import json
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, PEM."""

    cert: bytes
    key: bytes


def pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


def _name(site: str, cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"amsm {site}"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _san(names: list[str]) -> x509.SubjectAlternativeName:
    alt: list[x509.GeneralName] = []
    for n in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            alt.append(x509.DNSName(n))
    return x509.SubjectAlternativeName(alt)


def new_ca(
    site: str, now: dt.datetime, days: int, cn: str | None = None
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A CA: the site's (clients and the frontend) or, named `cn`, the server's internode
    one, a root of its own so that no client certificate is ever an internode one."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(site, cn or f"amsm {site} CA")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def issue(
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    site: str,
    cn: str,
    *,
    server_names: list[str] | None,
    now: dt.datetime,
    days: int,
) -> Issued:
    """A leaf signed by the CA: a server's (with `server_names` as its SANs) or a client's."""
    key = ec.generate_private_key(ec.SECP256R1())
    # A server's certificate is also its client one (the internode one: each service is
    # the other's client; the frontend's: the server dials its own frontend with it).
    usage = [ExtendedKeyUsageOID.CLIENT_AUTH]
    if server_names:
        usage.insert(0, ExtendedKeyUsageOID.SERVER_AUTH)
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(site, cn))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        # An EC key signs the handshake and nothing else (RFC 5280 4.2.1.3; RFC 8446 4.4.3)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if server_names:
        b = b.add_extension(_san(server_names), critical=False)
    cert = b.sign(ca_key, hashes.SHA256())
    return Issued(cert.public_bytes(Encoding.PEM), pem_key(key))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _uint(n: int) -> str:
    return _b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def key_id(public: rsa.RSAPublicKey) -> str:
    """The JWK's `kid`: the claim mapper finds the key a token names by it."""
    numbers = public.public_numbers()
    return hashlib.sha256(f"{numbers.n}:{numbers.e}".encode()).hexdigest()[:16]


def jwks(public: rsa.RSAPublicKey) -> dict[str, object]:
    """The JSON Web Key Set (RFC 7517) of the signing key, as Temporal's default JWT key
    provider reads it (`global.authorization.jwtKeyProvider.keySourceURIs`)."""
    numbers = public.public_numbers()
    return {
        "keys": [
            {
                "kty": "RSA",
                "use": "sig",
                "alg": "RS256",
                "kid": key_id(public),
                "n": _uint(numbers.n),
                "e": _uint(numbers.e),
            }
        ]
    }


def token(
    key: rsa.RSAPrivateKey, subject: str, permissions: list[str], now: dt.datetime, days: int
) -> str:
    """A JWT (RFC 7519, RS256) for Temporal's default JWT claim mapper: `sub` and the
    `permissions` claim, each `<namespace>:<read|write|worker|admin>`
    (common/authorization/default_jwt_claim_mapper.go)."""
    header = {"alg": "RS256", "typ": "JWT", "kid": key_id(key.public_key())}
    claims = {
        "sub": subject,
        "permissions": permissions,
        # Back-dated as the certificates are: a server whose clock runs a little behind
        # this machine's would take a token issued "in the future" for a bad one.
        "iat": int((now - dt.timedelta(minutes=5)).timestamp()),
        "exp": int((now + dt.timedelta(days=days)).timestamp()),
    }
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"
