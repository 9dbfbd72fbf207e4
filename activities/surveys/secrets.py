"""The secrets the worker holds, and the scan of every answer against them before it
leaves the worker (an activity result is kept in Temporal's history, and the CLI writes
it to DIR): a fact whose record holds one is withheld, its answers dropped, and the
survey says so, without saying which secret.

By construction nothing recorded should hold one (recording.py: scripts and statements
carry no credential); this scan is the proof that holds when a host echoes one back
(a password in a service's command line, a key in a file the fact reads)."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

from activities.drivers.credentials import CredentialStore
from activities.drivers.errors import CredentialError
from activities.surveys.models import FactRecord
from inventory.models import Inventory

# Shorter secrets are not scanned for: they would match ordinary text (and a password
# of fewer characters is refused by no host the survey knows). Key files are scanned
# line by line too (a PEM body's lines are 64 characters).
MIN_LENGTH = 6
WORKER_SECRETS = ("TEMPORAL_API_KEY", "AMSM_CODEC_KEY")
WORKER_KEY_FILES = ("TEMPORAL_TLS_KEY", "AMSM_CODEC_KEY_FILE")


def forms(secret: str) -> set[str]:
    """The ways a secret can appear in a recorded answer: as it is, JSON-escaped (the
    record is JSON), XML-escaped (CLIXML error records), braced for ODBC."""
    # An ODBC braced value doubles `}` ([MS-ODBCSTR] 2.1.2; drivers/dsm.py odbc_value).
    braced = "{" + secret.replace("}", "}}") + "}"
    out = {secret, json.dumps(secret)[1:-1], html.escape(secret, quote=False), braced}
    return {f for f in out if len(f) >= MIN_LENGTH}


def held_secrets(inv: Inventory, store: CredentialStore) -> set[str]:
    """Every password and private key the inventory's credentials resolve to on this
    worker, and each long line of each key file, in every form."""
    found: set[str] = set()
    for ref in inv.credentials:
        try:
            secret = store.resolve(ref)
        except CredentialError:
            continue  # not resolvable here: then it cannot be sent or echoed either
        if secret.password:
            found |= forms(secret.password)
        if secret.key_file is not None:
            found |= key_forms(secret.key_file)
    # The worker's own: its Temporal API key and mTLS key, the payload codec's keys, as
    # their environment variables give them (wire/: a flag given instead is not seen here).
    for name in WORKER_SECRETS:
        if value := os.environ.get(name):
            found |= forms(value)
    for name in WORKER_KEY_FILES:
        if value := os.environ.get(name):
            found |= key_forms(Path(value))
    return found


def key_forms(path: Path) -> set[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    out = forms(text.strip())
    for line in text.splitlines():
        line = line.strip()
        # A codec key file's line is KEY_ID:BASE64: the key alone too.
        for part in {line, line.rpartition(":")[2]}:
            if len(part) >= 16 and not part.startswith("-----"):
                out |= forms(part)
    return out


def holds_secret(record: FactRecord, secrets: set[str]) -> bool:
    text = record.model_dump_json()
    raw = " ".join(
        [*(e.stdout + e.stderr + (e.error or "") for e in record.exchanges)]
        + [str(s.rows) + (s.error or "") for s in record.statements]
    )
    return any(s in text or s in raw for s in secrets)


def withhold(record: FactRecord, secrets: set[str]) -> FactRecord:
    """`record`, or a stub saying it was withheld (no answer, no parse, no error text)."""
    if not holds_secret(record, secrets):
        return record
    return FactRecord(
        fact=record.fact,
        host=record.host,
        variant=record.variant,
        doc=record.doc,
        withheld="withheld: its answer holds a secret the worker holds",
    )
