"""Status patches of a TestPlan: phase, conditions, observedGeneration, nextRunTime.

Conditions follow metav1.Condition: `lastTransitionTime` changes only when `status` does,
so a resync that finds nothing new writes nothing new.
"""

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from tep_operator.plan import Plan, PlanError
from tep_operator.schedule import isoformat, next_run_time

PHASE_SCHEDULED = "Scheduled"
PHASE_SUSPENDED = "Suspended"
PHASE_RUNNING = "Running"
PHASE_INVALID = "Invalid"

VALID = "Valid"
READY = "Ready"
LAST_RUN_SUCCEEDED = "LastRunSucceeded"


def condition(
    existing: Sequence[Mapping[str, Any]],
    type_: str,
    status: bool,
    reason: str,
    message: str,
    generation: int,
    now: dt.datetime,
) -> dict[str, Any]:
    """A condition, keeping the old transition time if its status did not change."""
    text = "True" if status else "False"
    previous = next((c for c in existing if c.get("type") == type_), None)
    since = previous.get("lastTransitionTime") if previous and previous.get("status") == text else None
    return {
        "type": type_,
        "status": text,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since or isoformat(now),
        "observedGeneration": generation,
    }


def merge_conditions(
    existing: Sequence[Mapping[str, Any]], updates: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """`existing` with the conditions of the same type replaced by `updates`, order kept."""
    by_type = {c["type"]: dict(c) for c in updates}
    merged = [by_type.pop(c.get("type", ""), dict(c)) for c in existing]
    return merged + list(by_type.values())


def idle_phase(plan: Plan) -> str:
    return PHASE_SCHEDULED if plan.enabled else PHASE_SUSPENDED


def scheduled_status(
    plan: Plan, old: Mapping[str, Any], cronjob_name: str, now: dt.datetime, running: bool = False
) -> dict[str, Any]:
    """Status of a valid plan whose CronJob is in place."""
    conditions = old.get("conditions") or []
    phase = PHASE_RUNNING if running else idle_phase(plan)
    schedule_text = f"{plan.crontab} ({plan.time_zone or 'UTC'})"
    return {
        "observedGeneration": plan.generation,
        "phase": phase,
        "cronJobName": cronjob_name,
        "nextRunTime": isoformat(next_run_time(plan.crontab, plan.time_zone, now)) if plan.enabled else None,
        "conditions": merge_conditions(
            conditions,
            [
                condition(conditions, VALID, True, "Valid", "the spec is valid", plan.generation, now),
                condition(
                    conditions,
                    READY,
                    True,
                    "CronJobReady" if plan.enabled else "Suspended",
                    f"CronJob {cronjob_name} runs on {schedule_text}"
                    if plan.enabled
                    else f"CronJob {cronjob_name} is suspended (spec.enabled is false)",
                    plan.generation,
                    now,
                ),
            ],
        ),
    }


def invalid_status(
    error: PlanError, generation: int, old: Mapping[str, Any], now: dt.datetime, cronjob_kept: bool
) -> dict[str, Any]:
    """Status of a plan that cannot be scheduled. A CronJob from an earlier valid spec is
    left running, and Ready says so, so nothing that worked is lost by a bad edit."""
    conditions = old.get("conditions") or []
    ready_message = (
        f"the CronJob of the last valid spec is unchanged: {old.get('cronJobName')}"
        if cronjob_kept
        else "no CronJob: the plan has never been valid"
    )
    return {
        "observedGeneration": generation,
        "phase": PHASE_INVALID,
        "conditions": merge_conditions(
            conditions,
            [
                condition(conditions, VALID, False, error.reason, str(error), generation, now),
                condition(
                    conditions,
                    READY,
                    cronjob_kept,
                    "LastValidCronJobKept" if cronjob_kept else "InvalidSpec",
                    ready_message,
                    generation,
                    now,
                ),
            ],
        ),
    }


def changed(old: Mapping[str, Any], patch: Mapping[str, Any]) -> bool:
    """Whether applying `patch` to status `old` would change anything."""
    return any(old.get(key) != value for key, value in patch.items())
