"""Search attributes of the pair's runs, so `amsm runs` can filter thousands of them on
Temporal's visibility store. They must be registered on the server (the embedded dev
server does it; see docs/site/production.md)."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

PAIR = SearchAttributeKey.for_keyword("AmsmPair")
KIND = SearchAttributeKey.for_keyword("AmsmKind")
INITIATOR = SearchAttributeKey.for_keyword("AmsmInitiator")
STATE = SearchAttributeKey.for_keyword("AmsmState")
ALL = [PAIR, KIND, INITIATOR, STATE]

# Runs started before the state was kept in a search attribute replay without it.
STATE_PATCH = "state-search-attribute"


def server_flags() -> list[str]:
    """`temporal server start-dev` flags that register them."""
    out: list[str] = []
    for key in ALL:
        out += ["--search-attribute", f"{key.name}=Keyword"]
    return out
