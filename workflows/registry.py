"""Every workflow the worker runs, for the worker and for replaying histories."""

from __future__ import annotations

from workflows.check import PairCheckWorkflow
from workflows.client_switch import ClientBatchWorkflow, ClientSwitchWorkflow
from workflows.control import ControlWorkflow
from workflows.dry_run import PairDryRunWorkflow
from workflows.fence import FenceWorkflow
from workflows.readiness import ReadinessWorkflow
from workflows.restore import RestoreWorkflow
from workflows.split import SplitWorkflow
from workflows.split_switch import SplitSwitchWorkflow
from workflows.status import PairStatusWorkflow
from workflows.survey import PairSurveyWorkflow
from workflows.switch import SwitchWorkflow
from workflows.watch import PairWatchWorkflow

# The four an operator starts (workflows/kinds.py), then what they and the console start.
WORKFLOWS: list[type] = [
    SwitchWorkflow,
    SplitWorkflow,
    SplitSwitchWorkflow,
    RestoreWorkflow,
    ClientSwitchWorkflow,
    ClientBatchWorkflow,
    PairStatusWorkflow,
    PairCheckWorkflow,
    PairSurveyWorkflow,
    PairDryRunWorkflow,
    ReadinessWorkflow,
    PairWatchWorkflow,
    ControlWorkflow,
    FenceWorkflow,
]
