"""The site survey (`amsm survey`): the short `pair-survey` workflow, its own id beside
any run, and each host's answers read back from its history."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client, WorkflowHandle

from activities.surveys.models import HostSurvey, SurveyResult
from api.check import start_read
from api.refusal import Refused
from api.runs import cause
from inventory.models import Inventory
from workflows.survey import READS_PER_HOST, PairSurveyWorkflow


async def start_survey(
    temporal: Client, inv: Inventory, operator: str
) -> WorkflowHandle[Any, SurveyResult]:
    """Start the survey of the pair; its handle (the caller follows its progress)."""
    return await start_read(
        temporal, inv, PairSurveyWorkflow.run, operator, "survey", READS_PER_HOST
    )


async def host_answers(
    temporal: Client, handle: WorkflowHandle[Any, SurveyResult]
) -> dict[str, HostSurvey]:
    """Each host's answers, from the run's history: the results of its `survey_host`
    activities, decoded as the worker encoded them (the payload codec included). Read
    once, without replaying the run (a query on a closed run would, once per host)."""
    try:
        history = await handle.fetch_history()
    except Exception as e:
        raise Refused(f"the survey's answers ({handle.id}) could not be read: {cause(e)}") from None
    scheduled: dict[int, str] = {}
    out: dict[str, HostSurvey] = {}
    for event in history.events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            scheduled[event.event_id] = (
                event.activity_task_scheduled_event_attributes.activity_type.name
            )
        elif event.HasField("activity_task_completed_event_attributes"):
            done = event.activity_task_completed_event_attributes
            if scheduled.get(done.scheduled_event_id) != "survey_host":
                continue
            [host] = await temporal.data_converter.decode(list(done.result.payloads), [HostSurvey])
            out[host.host.lower()] = host
    return out
