"""The sentences of `amsm check`'s frontend probe (api/check.py; docs/site/production.md,
Lock-down): what each answer to the unauthenticated signal is reported as. The probe
itself runs against the dev server in tests/integration/test_lockdown.py."""

from __future__ import annotations

from temporalio.service import RPCStatusCode

from api.check import frontend_finding


def test_a_lookup_is_an_accepted_unauthenticated_write() -> None:
    for answer in (RPCStatusCode.NOT_FOUND, RPCStatusCode.OK):
        f = frontend_finding("temporal.example:7233", answer)
        assert f.host == "temporal temporal.example:7233" and f.check == "temporal-frontend"
        assert f.found.startswith("it accepted an unauthenticated write")
        assert "docs/site/production.md#lock-down" in f.fix and f.steps == []


def test_any_other_answer_says_it_could_not_tell() -> None:
    f = frontend_finding("t:7233", RPCStatusCode.UNAVAILABLE)
    assert f.found == "could not tell: the probe's signal was answered UNAVAILABLE"
    g = frontend_finding("t:7233", "deadline exceeded")
    assert g.found == "could not tell: the probe's signal was answered deadline exceeded"
