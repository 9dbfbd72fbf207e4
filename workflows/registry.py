"""Every workflow the worker runs, for the worker and for replaying histories."""

from __future__ import annotations

from workflows.check import PairCheckWorkflow
from workflows.client_switch import ClientBatchWorkflow, ClientSwitchWorkflow
from workflows.control import ControlWorkflow
from workflows.control_approval import ControlApprovalWorkflow
from workflows.dry_run import PairDryRunWorkflow
from workflows.fence import FenceWorkflow
from workflows.kinds import CLASSES
from workflows.nonce import NonceWorkflow
from workflows.notify import NotifyTestWorkflow
from workflows.readiness import ReadinessWorkflow
from workflows.schedule import ScheduleWorkflow
from workflows.status import PairStatusWorkflow
from workflows.survey import PairSurveyWorkflow
from workflows.watch import PairWatchWorkflow

# What the kinds (workflows/kinds.py) and the console start besides.
OTHERS: list[type] = [
    ClientSwitchWorkflow,
    ClientBatchWorkflow,
    PairStatusWorkflow,
    PairCheckWorkflow,
    PairSurveyWorkflow,
    PairDryRunWorkflow,
    ReadinessWorkflow,
    PairWatchWorkflow,
    ControlWorkflow,
    ControlApprovalWorkflow,
    FenceWorkflow,
    ScheduleWorkflow,
    NotifyTestWorkflow,
    NonceWorkflow,
]


def workflows() -> list[type]:
    """The kinds an operator starts, as listed now (a test may add one), then the others."""
    return [*CLASSES.values(), *OTHERS]


WORKFLOWS: list[type] = workflows()
