"""A real OpenLDAP server of a test's own: Debian's slapd (`make ldap` installs it),
started on loopback from a slapd.conf written to a temporary folder, with a test CA and a
server certificate made here (`cryptography`), serving ldaps:// and ldap:// (for
StartTLS). Its directory (slapadd, before it starts):

    dc=amsm,dc=test
      ou=people:   uid=ann, uid=olga, uid=vic, uid=nob (password: PASSWORD for each)
      ou=groups:   cn=AMSM-Operators  members: cn=Night-Shift (a group), uid=olga
                   cn=Night-Shift     members: uid=ann   (ann operates through it: nested)
                   cn=AMSM-Viewers    members: uid=vic
                   cn=Coffee-Club     members: uid=nob   (no group the console maps)
      ou=services: cn=amsm-console (the search account; password: SEARCH_PASSWORD)

Anonymous binds are refused (`disallow bind_anon`), so nothing here works without a bind.

Each person also carries Active Directory's attributes of a user (sAMAccountName,
objectCategory: person, userAccountControl 512: a normal account; ann also an explicit
userPrincipalName), from a small schema of the test's own with Microsoft's attribute
OIDs (MS-ADA3), so the searches the console makes of an Active Directory run here too.
slapd knows LDAP_MATCHING_RULE_BIT_AND (1.2.840.113556.1.4.803, its integerBitAndMatch),
not LDAP_MATCHING_RULE_IN_CHAIN: Active Directory's nested groups are not read here.
"""

from __future__ import annotations

import contextlib
import datetime
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SLAPD = Path("/usr/sbin/slapd")
SLAPADD = Path("/usr/sbin/slapadd")
SCHEMA = Path("/etc/ldap/schema")
SUFFIX = "dc=amsm,dc=test"
UPN_SUFFIX = "amsm.test"
ADMIN_DN = f"cn=admin,{SUFFIX}"
ADMIN_PASSWORD = "admin-password-of-the-test"
PASSWORD = "directory-password-1"
SEARCH_DN = f"cn=amsm-console,ou=services,{SUFFIX}"
SEARCH_PASSWORD = "search-account-password"
PEOPLE = ("ann", "olga", "vic", "nob")
# Each group and its members: people by uid, groups by cn (as "cn:NAME").
GROUPS = {
    "AMSM-Operators": ("cn:Night-Shift", "olga"),
    "Night-Shift": ("ann",),
    "AMSM-Viewers": ("vic",),
    "Coffee-Club": ("nob",),
}


def person_dn(uid: str) -> str:
    return f"uid={uid},ou=people,{SUFFIX}"


def group_dn(cn: str) -> str:
    return f"cn={cn},ou=groups,{SUFFIX}"


@dataclass
class Slapd:
    ldaps_url: str
    ldap_url: str  # for StartTLS
    ca_file: Path
    dir: Path

    def modify_members(self, group: str, add: str = "", remove: str = "") -> None:
        """Add or remove one member DN of `group`, as the directory's administrator."""
        self.modify(group_dn(group), "member", [add or remove], "add" if add else "delete")

    @contextlib.contextmanager
    def _admin(self) -> Iterator[Any]:
        """A connection bound as the directory's administrator."""
        import ldap

        conn = ldap.initialize(self.ldaps_url)
        conn.set_option(ldap.OPT_X_TLS_CACERTFILE, str(self.ca_file))
        conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)
        conn.simple_bind_s(ADMIN_DN, ADMIN_PASSWORD)
        try:
            yield conn
        finally:
            conn.unbind_s()

    def modify(self, dn: str, attr: str, values: list[str], op: str = "replace") -> None:
        """Replace ("replace"), add ("add") or delete ("delete") values of `attr` of `dn`,
        or the whole entry (op "delete-entry"), as the directory's administrator."""
        import ldap

        with self._admin() as conn:
            if op == "delete-entry":
                conn.delete_s(dn)
                return
            kind = {"replace": ldap.MOD_REPLACE, "add": ldap.MOD_ADD, "delete": ldap.MOD_DELETE}
            conn.modify_s(dn, [(kind[op], attr, [v.encode() for v in values])])

    def add(self, dn: str, attrs: dict[str, list[str]]) -> None:
        """Add the entry `dn`, as the directory's administrator."""
        import ldap.modlist

        with self._admin() as conn:
            values = {k: [v.encode() for v in vs] for k, vs in attrs.items()}
            conn.add_s(dn, ldap.modlist.addModlist(values))


def unavailable() -> str | None:
    """Why no slapd can be started here, or None."""
    if not SLAPD.exists() or not SLAPADD.exists() or not (SCHEMA / "core.schema").exists():
        return "Debian's slapd is not installed (make ldap installs it)"
    try:
        import ldap  # noqa: F401
    except ImportError:
        return "python-ldap is not installed (make setup installs the directory extra)"
    return None


def _certificates(d: Path) -> Path:
    """A test CA and a certificate for 127.0.0.1 and localhost signed by it; the CA's path."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "amsm test directory CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (d / "ca.pem").write_bytes(ca.public_bytes(pem))
    (d / "server.pem").write_bytes(cert.public_bytes(pem))
    (d / "server.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (d / "server.key").chmod(0o600)
    return d / "ca.pem"


# Active Directory's user attributes, with their OIDs (MS-ADA3: userPrincipalName,
# sAMAccountName, objectCategory, userAccountControl); objectCategory is a string here
# (Active Directory stores a DN and reads `objectCategory=person` as the class's DN).
# The object class is ours, in OpenLDAP's experimental arc 1.3.6.1.4.1.4203.666.
AD_SCHEMA = """\
attributetype ( 1.2.840.113556.1.4.656 NAME 'userPrincipalName'
  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName'
  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.782 NAME 'objectCategory'
  EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.8 NAME 'userAccountControl'
  EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.4203.666.11.900.1 NAME 'amsmTestAdUser' AUXILIARY
  MAY ( userPrincipalName $ sAMAccountName $ objectCategory $ userAccountControl ) )
"""


def _config(d: Path) -> Path:
    conf = d / "slapd.conf"
    (d / "db").mkdir()
    (d / "ad.schema").write_text(AD_SCHEMA)
    conf.write_text(
        "\n".join(
            [
                *(f"include {SCHEMA / s}.schema" for s in ("core", "cosine", "inetorgperson")),
                f"include {d / 'ad.schema'}",
                f"pidfile {d / 'slapd.pid'}",
                f"argsfile {d / 'slapd.args'}",
                "modulepath /usr/lib/ldap",
                "moduleload back_mdb",
                f"TLSCACertificateFile {d / 'ca.pem'}",
                f"TLSCertificateFile {d / 'server.pem'}",
                f"TLSCertificateKeyFile {d / 'server.key'}",
                "disallow bind_anon",
                "database mdb",
                "maxsize 10485760",
                f"suffix {SUFFIX}",
                f"rootdn {ADMIN_DN}",
                f"rootpw {ADMIN_PASSWORD}",
                f"directory {d / 'db'}",
                "access to attrs=userPassword by self =w by anonymous auth by * none",
                "access to * by users read by * none",
                "",
            ]
        )
    )
    return conf


def _entries() -> str:
    """The directory as LDIF (slapd hashes nothing: slapadd stores the passwords given,
    which slapd compares as {CLEARTEXT}; fine for a test directory)."""
    out = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: amsm\no: amsm test",
        *(f"dn: ou={ou},{SUFFIX}\nobjectClass: organizationalUnit\nou: {ou}" for ou in
          ("people", "groups", "services")),
        *(
            f"dn: {person_dn(uid)}\nobjectClass: inetOrgPerson\nobjectClass: amsmTestAdUser\n"
            f"uid: {uid}\ncn: {uid}\nsn: {uid}\nuserPassword: {PASSWORD}\n"
            f"sAMAccountName: {uid}\nobjectCategory: person\nuserAccountControl: 512"
            + (f"\nuserPrincipalName: {uid}@{UPN_SUFFIX}" if uid == "ann" else "")
            for uid in PEOPLE
        ),
        f"dn: {SEARCH_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
        f"cn: amsm-console\nuserPassword: {SEARCH_PASSWORD}",
    ]  # fmt: skip
    for cn, members in GROUPS.items():
        dns = [group_dn(m[3:]) if m.startswith("cn:") else person_dn(m) for m in members]
        lines = [f"dn: {group_dn(cn)}", "objectClass: groupOfNames", f"cn: {cn}"]
        out.append("\n".join(lines + [f"member: {dn}" for dn in dns]))
    return "\n\n".join(out) + "\n"


@contextlib.contextmanager
def running_slapd(tmp: Path) -> Iterator[Slapd]:
    """slapd serving the directory above on two loopback ports until the block ends."""
    from lab.init import free_ports

    d = tmp / "slapd"
    d.mkdir()
    ca = _certificates(d)
    conf = _config(d)
    (d / "data.ldif").write_text(_entries())
    added = subprocess.run(
        [str(SLAPADD), "-f", str(conf), "-l", str(d / "data.ldif")],
        capture_output=True, text=True,
    )  # fmt: skip
    if added.returncode != 0:
        raise RuntimeError(f"slapadd exited {added.returncode}: {added.stderr}")
    tls_port, plain_port = free_ports(2)
    urls = f"ldaps://127.0.0.1:{tls_port}/ ldap://127.0.0.1:{plain_port}/"
    log = (d / "slapd.log").open("wb")
    # -d keeps it in the foreground (a child of this test); "none": no debug output.
    proc = subprocess.Popen(
        [str(SLAPD), "-f", str(conf), "-h", urls, "-d", "none"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        _wait_for(proc, tls_port, d / "slapd.log")
        yield Slapd(f"ldaps://127.0.0.1:{tls_port}", f"ldap://127.0.0.1:{plain_port}", ca, d)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(d / "db", ignore_errors=True)


def _wait_for(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 20
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"slapd exited {proc.returncode}: {log.read_text()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"slapd did not listen on {port}: {log.read_text()}")
        time.sleep(0.05)
