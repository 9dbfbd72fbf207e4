"""The sentences and the decisions of `amsm check`'s frontend probes (api/check.py;
docs/site/production.md, Lock-down): what each answer is reported as, which failed
connections are the server refusing the TLS handshake (the messages are the SDK's own,
as it raised them against Debian's HAProxy with `verify required`, a name that does not
resolve and a closed port), and what the two probes' answers add up to. The probes
themselves run against the dev server in tests/integration/test_lockdown.py."""

from __future__ import annotations

from temporalio.service import RPCStatusCode

from api.check import REFUSED, frontend_finding, refused_at_handshake, verdict

HEAD = "Failed client connect: "
AFTER = HEAD + "`get_system_info` call error after connection: Status { code: Unknown, "
HANDSHAKE_REFUSED = [
    AFTER + 'message: "transport error", source: Some(tonic::transport::Error(Transport, '
    'hyper::Error(Io, Custom { kind: InvalidData, error: "received fatal alert: '
    'CertificateRequired" }))) }',
    AFTER + 'message: "transport error", source: Some(tonic::transport::Error(Transport, '
    'hyper::Error(Io, Custom { kind: InvalidData, error: "received fatal alert: UnknownCA" }))) }',
    AFTER + 'message: "transport error", source: Some(tonic::transport::Error(Transport, '
    'hyper::Error(Io, Custom { kind: BrokenPipe, error: "stream closed because of a broken '
    'pipe" }))) }',
    AFTER + 'message: "operation was canceled", source: Some(tonic::transport::Error('
    'Transport, hyper::Error(Canceled, "connection closed"))) }',
]
NOT_A_HANDSHAKE = [
    HEAD + "Server connection error: tonic::transport::Error(Transport, ConnectError("
    'ConnectError("dns error", Custom { kind: Uncategorized, error: "failed to lookup address '
    'information: Name or service not known" })))',
    HEAD + "Server connection error: tonic::transport::Error(Transport, ConnectError("
    'ConnectError("tcp connect error", 127.0.0.1:24519, Os { code: 111, kind: '
    'ConnectionRefused, message: "Connection refused" })))',
    "",
]


def test_a_lookup_is_an_accepted_unauthenticated_write() -> None:
    for answer in (RPCStatusCode.NOT_FOUND, RPCStatusCode.OK):
        f = frontend_finding("temporal.example:7233", answer)
        assert f.host == "temporal temporal.example:7233" and f.check == "temporal-frontend"
        assert f.found.startswith("it accepted an unauthenticated write")
        assert "docs/site/production.md#lock-down" in f.fix and f.steps == []


def test_a_lookup_with_a_certificate_alone_is_mutual_tls_without_the_authorizer() -> None:
    f = frontend_finding("t:7233", RPCStatusCode.NOT_FOUND, certified=True)
    assert f.found.startswith("it accepted a write from a client certificate without a token")
    assert "no token refused" in f.expected


def test_any_other_answer_says_it_could_not_tell() -> None:
    f = frontend_finding("t:7233", RPCStatusCode.UNAVAILABLE)
    assert f.found == "could not tell: the probe's signal was answered UNAVAILABLE"
    g = frontend_finding("t:7233", "deadline exceeded")
    assert g.found == "could not tell: the probe's signal was answered deadline exceeded"


def test_only_the_server_ending_the_handshake_counts_as_refused() -> None:
    for text in HANDSHAKE_REFUSED:
        assert refused_at_handshake(RuntimeError(text)), text
    for text in NOT_A_HANDSHAKE:
        assert not refused_at_handshake(RuntimeError(text)), text
    assert not refused_at_handshake(TimeoutError())


def test_the_lock_down_holds_only_if_the_certificate_alone_is_refused_too() -> None:
    denied, unknown = RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.NOT_FOUND
    # mutual TLS and the authorizer: the stranger refused, the certificate alone denied
    assert verdict(REFUSED, denied) is None
    assert verdict(REFUSED, RPCStatusCode.UNAUTHENTICATED) is None
    # the authorizer without mutual TLS, and an operator without a client certificate
    assert verdict(denied, None) is None
    # mutual TLS alone: the certificate's holder writes
    assert verdict(REFUSED, unknown) == (unknown, True)
    # the certificate refused at its own handshake, or a timeout: could not tell
    assert verdict(REFUSED, REFUSED) == (REFUSED, True)
    # no lock-down; a stranger's probe that could not tell is reported as such
    assert verdict(unknown, None) == (unknown, False)
    assert verdict("no connection within 10 s", None) == ("no connection within 10 s", False)
