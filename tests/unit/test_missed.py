"""Missed schedules: the OnSchedule condition from crontab, time zone, deadline and the last start."""

import datetime as dt
from typing import Any

import pytest

from tep_operator import missed
from tep_operator.plan import read_plan

CREATED = dt.datetime(2026, 11, 21, 8, 30, tzinfo=dt.UTC)


def plan(**spec: Any) -> Any:
    body = {
        "metadata": {"name": "smoke", "namespace": "qa", "generation": 1},
        "spec": {
            "crontab": "0 * * * *",
            "startingDeadlineSeconds": 120,
            "source": {"configMap": {"name": "t"}},
            "notify": [
                {
                    "name": "pager",
                    "kind": "webhook",
                    "urlFrom": {"secretKeyRef": {"name": "h", "key": "k"}},
                    "on": ["Missed"],
                },
                {"name": "chat", "kind": "slack", "urlFrom": {"secretKeyRef": {"name": "h", "key": "s"}}},
            ],
            **spec,
        },
    }
    return read_plan(body)


def at(hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, 21, hour, minute, second, tzinfo=dt.UTC)


def check(p: Any, old: dict[str, Any], now: dt.datetime, active: list[str] | None = None) -> dict[str, Any]:
    return missed.schedule_patch(p, old, {}, now, active or [], CREATED, None)


def on_schedule(patch: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in patch["conditions"] if c["type"] == "OnSchedule")


SEEN = {"observedGeneration": 1, "scheduleSince": "2026-11-21T08:30:00Z"}


def test_the_first_sight_starts_the_watch() -> None:
    patch = check(plan(), {}, at(8, 31))
    assert patch["scheduleSince"] == "2026-11-21T08:31:00Z"
    assert on_schedule(patch)["status"] == "True" and on_schedule(patch)["reason"] == "OnSchedule"


@pytest.mark.parametrize(
    ("now", "missed_at"),
    [
        (at(9, 1), None),  # due 09:00, deadline 09:02: not yet
        (at(9, 2), None),
        (at(9, 2, 1), "2026-11-21T09:00:00Z"),
        (at(13), "2026-11-21T09:00:00Z"),  # the first missed due time, not the latest
    ],
)
def test_a_due_run_that_did_not_start_within_the_deadline(now: dt.datetime, missed_at: str | None) -> None:
    patch = check(plan(), SEEN, now)
    condition = on_schedule(patch)
    if missed_at is None:
        assert condition["status"] == "True"
        assert "notifications" not in patch
    else:
        assert (condition["status"], condition["reason"]) == ("False", "MissedSchedule")
        assert condition["message"] == (
            f"the run due at {missed_at} did not start within startingDeadlineSeconds (120s)"
        )
        # only the target that asked for Missed
        assert [e["key"] for e in patch["notifications"]] == [f"qa/smoke/missed@{missed_at}/pager/Missed"]


def test_a_started_run_clears_it() -> None:
    old = {**SEEN, **check(plan(), SEEN, at(10))}
    assert missed.is_missed(old)
    started = {**old, "lastScheduleTime": "2026-11-21T10:00:00Z"}
    assert on_schedule(check(plan(), started, at(10, 1)))["status"] == "True"
    manual = {**old, "lastRun": {"name": "m", "startTime": "2026-11-21T09:59:00Z"}}
    assert on_schedule(check(plan(), manual, at(10, 1)))["status"] == "True"


def test_the_same_episode_keeps_its_first_due_time_and_notifies_once() -> None:
    first = {**SEEN, **check(plan(), SEEN, at(10))}
    later = check(plan(), first, at(12))
    assert on_schedule(later) == on_schedule(first)
    assert later.get("notifications", first["notifications"]) == first["notifications"]
    assert missed.newly_missed(first, later) is None
    assert missed.newly_missed(SEEN, first) == on_schedule(first)["message"]


def test_a_suspended_plan_misses_nothing() -> None:
    condition = on_schedule(check(plan(enabled=False), SEEN, at(13)))
    assert (condition["status"], condition["reason"]) == ("True", "Suspended")


def test_a_forbid_blocked_run_in_progress_is_not_a_miss() -> None:
    assert on_schedule(check(plan(), SEEN, at(13), active=["smoke-1"]))["status"] == "True"
    allowed = plan(concurrencyPolicy="Allow")
    assert on_schedule(check(allowed, SEEN, at(13), active=["smoke-1"]))["status"] == "False"


def test_a_new_spec_restarts_the_watch() -> None:
    changed = plan()
    old = {**SEEN, "observedGeneration": 0}
    patch = check(changed, old, at(13))
    assert patch["scheduleSince"] == "2026-11-21T13:00:00Z"
    assert on_schedule(patch)["status"] == "True"


def test_the_time_zone_decides_the_due_time() -> None:
    # 09:00 in Asia/Shanghai is 01:00 UTC: due 2026-11-22T01:00Z
    shanghai = plan(crontab="0 9 * * *", timeZone="Asia/Shanghai")
    assert on_schedule(check(shanghai, SEEN, at(23)))["status"] == "True"
    patch = check(shanghai, SEEN, dt.datetime(2026, 11, 22, 1, 3, tzinfo=dt.UTC))
    assert "due at 2026-11-22T01:00:00Z" in on_schedule(patch)["message"]


def test_the_live_cronjob_knows_better_than_a_stale_status() -> None:
    cronjob = {"status": {"lastScheduleTime": "2026-11-21T12:00:00Z"}}
    assert (
        on_schedule(missed.schedule_patch(plan(), SEEN, {}, at(12, 30), [], CREATED, cronjob))["status"]
        == "True"
    )
    assert (
        on_schedule(missed.schedule_patch(plan(), SEEN, {}, at(12, 30), [], CREATED, None))["status"]
        == "False"
    )


def test_before_the_plan_existed_nothing_was_due() -> None:
    assert missed.baseline({}, CREATED) == CREATED
    later = {"lastScheduleTime": "2026-11-21T10:00:00Z", "scheduleSince": "2026-11-21T09:00:00Z"}
    assert missed.baseline(later, CREATED) == at(10)
