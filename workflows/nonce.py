"""A signed start's or control's nonce, taken exactly once (docs/operators/signed-acts.md).

A start or control is bound to the run it follows, and the runs after that one are read
from the server's list of workflows, which lags: a signed start sent again within that
lag would not be seen as replayed. So once its signature is proven, the run also takes
the intent's nonce by starting a child workflow under an id made from it,
`amsm-PAIR-nonce-<digest>`, asking that the id not be reused (WorkflowIdReusePolicy
REJECT_DUPLICATE: "do not permit re-use of the Workflow Id for this Workflow", Temporal's
API, temporal/api/enums/v1/workflow.proto). The server checks that against its own
record of workflow ids, which is consistent, unlike its list: while any run under the id
is kept, a second take of the same nonce is refused and the intent with it, however soon
it comes. (The policy binds the start that asks for it: anyone may start another run
under the id, which only makes a later take refuse, never pass.)

A closed workflow is kept for the namespace's retention (three days in the namespace
docker-compose.yml creates; Temporal refuses less than a day unless configured to):
far longer than an intent is good for (ten minutes after its signing, a minute of clock
ahead). Only an intent whose signature was proven takes an id, so nobody without a key
can fill the namespace with them. The child does nothing and ends at once; it is
started, never awaited, and left alone when the run ends.
"""

from __future__ import annotations

import hashlib

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.workflow import ChildWorkflowCancellationType, ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.models import NonceInput
    from inventory import intent
    from inventory.models import pair_workflow_id

# A signed start or control takes its nonce by starting NonceWorkflow (histories from
# before it take none).
NONCE_PATCH = "signed-nonces-taken"


def nonce_workflow_id(pair: str, nonce: str) -> str:
    """The id that holds `nonce` for pair `pair`: a digest, so whatever a signer put in
    its nonce, the id stays short and plain."""
    digest = hashlib.sha256(nonce.encode()).hexdigest()[:32]
    return f"{pair_workflow_id(pair)}-nonce-{digest}"


# The holder's workflow type (what the Web UI lists).
NONCE_TYPE = "signed-nonce"


@workflow.defn(name=NONCE_TYPE)
class NonceWorkflow:
    """Holds a nonce's id; does nothing."""

    @workflow.run
    async def run(self, inp: NonceInput) -> None:
        return None


async def take_nonce(pair: str, nonce: str) -> str | None:
    """Takes `nonce` for the run: None, or why the intent is refused as replayed (its
    nonce was taken already). Nothing in a history from before NONCE_PATCH."""
    if not workflow.patched(NONCE_PATCH):
        return None
    wid = nonce_workflow_id(pair, nonce)
    info = workflow.info()
    try:
        await workflow.start_child_workflow(
            NonceWorkflow.run,
            NonceInput(pair=pair, taken_by=info.workflow_id, run_id=info.run_id),
            id=wid,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            parent_close_policy=ParentClosePolicy.ABANDON,
            cancellation_type=ChildWorkflowCancellationType.ABANDON,
        )
    except WorkflowAlreadyStartedError:
        return (
            f"intent refused (replayed): its nonce was taken already (workflow {wid}): a "
            f"signed act that starts a run starts one; sign it again ({intent.DOCS})"
        )
    return None
