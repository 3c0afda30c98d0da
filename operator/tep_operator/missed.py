"""Missed schedules: a run that was due and did not start within startingDeadlineSeconds.

Pure. Kubernetes owns the clock, but its CronJob controller can stop starting runs (the
kube-controller-manager down, a CronJob suspended by hand, a deadline always missed) and
nobody would know. The operator knows the crontab, the time zone and the deadline, so it
checks: the first due time after the last start (or after the schedule took effect) must
have started by due time + startingDeadlineSeconds. The answer is the OnSchedule condition.
"""

import datetime as dt
from collections.abc import Mapping
from typing import Any

from tep_operator.notify import missed_patch
from tep_operator.plan import Plan
from tep_operator.runs import parse_time
from tep_operator.schedule import isoformat, next_run_time
from tep_operator.status import condition, merge_conditions

ON_SCHEDULE = "OnSchedule"
MISSED = "MissedSchedule"


def baseline(status: Mapping[str, Any], *known: dt.datetime | None) -> dt.datetime | None:
    """Since when every due run must have started: the latest of the time the plan's current
    schedule took effect (scheduleSince), its last schedule, the last run's start, and the
    `known` times (the plan's creation, the live CronJob's lastScheduleTime: the status'
    copy of it lags behind after the operator was down)."""
    times = [
        parse_time(status.get("scheduleSince")),
        parse_time(status.get("lastScheduleTime")),
        parse_time((status.get("lastRun") or {}).get("startTime")),
        *known,
    ]
    found = [t for t in times if t is not None]
    return max(found) if found else None


def overdue(plan: Plan, since: dt.datetime, now: dt.datetime) -> dt.datetime | None:
    """The first run due after `since` if its starting deadline has passed by `now`."""
    due = next_run_time(plan.crontab, plan.time_zone, since)
    return due if due + dt.timedelta(seconds=plan.starting_deadline_seconds) < now else None


def schedule_patch(
    plan: Plan,
    old: Mapping[str, Any],
    patch: Mapping[str, Any],
    now: dt.datetime,
    active: list[str],
    created: dt.datetime | None,
    cronjob: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """`patch` (the plan's scheduled status) with scheduleSince and the OnSchedule condition,
    and the Missed notifications when the condition turns False. `cronjob` is the plan's
    CronJob as last seen (None if none)."""
    out = dict(patch)
    if old.get("observedGeneration") != plan.generation or not old.get("scheduleSince"):
        out["scheduleSince"] = isoformat(now)  # a new schedule: due times count from now
    merged = {**old, **out}
    conditions = merged.get("conditions") or []
    scheduled = parse_time(((cronjob or {}).get("status") or {}).get("lastScheduleTime"))
    since = baseline(merged, created, scheduled)
    due = None
    if plan.enabled and since and not (active and plan.concurrency_policy == "Forbid"):
        due = overdue(plan, since, now)
    previous: Mapping[str, Any] = next((c for c in conditions if c.get("type") == ON_SCHEDULE), {})
    if due is not None:
        due_text = isoformat(due)
        if previous.get("status") == "False" and previous.get("reason") == MISSED:
            on_schedule = dict(previous)  # the same episode: its first due time stays
        else:
            on_schedule = condition(
                conditions,
                ON_SCHEDULE,
                False,
                MISSED,
                f"the run due at {due_text} did not start within startingDeadlineSeconds "
                f"({plan.starting_deadline_seconds}s)",
                plan.generation,
                now,
            )
            out.update(missed_patch(plan, merged, due_text, now))
    elif plan.enabled:
        on_schedule = condition(
            conditions, ON_SCHEDULE, True, "OnSchedule", "due runs start on time", plan.generation, now
        )
    else:
        on_schedule = condition(
            conditions,
            ON_SCHEDULE,
            True,
            "Suspended",
            "no runs are due (spec.enabled is false)",
            plan.generation,
            now,
        )
    out["conditions"] = merge_conditions(conditions, [on_schedule])
    return out


def is_missed(status: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") == ON_SCHEDULE and c.get("status") == "False" for c in status.get("conditions") or []
    )


def newly_missed(old: Mapping[str, Any], patch: Mapping[str, Any]) -> str | None:
    """The OnSchedule message when this patch turns the condition False; None otherwise."""
    if is_missed(old) or not is_missed(patch):
        return None
    return next(str(c.get("message", "")) for c in patch["conditions"] if c.get("type") == ON_SCHEDULE)
