"""Status patches: phase, conditions, nextRunTime in the plan's time zone."""

import datetime as dt
from typing import Any

from tep_operator.plan import PlanError, read_plan
from tep_operator.schedule import next_run_time
from tep_operator.status import changed, invalid_status, scheduled_status

NOW = dt.datetime(2026, 11, 21, 19, 42, 10, tzinfo=dt.UTC)


def plan(**spec: Any):
    base = {"crontab": "*/30 * * * *", "source": {"configMap": {"name": "t"}}}
    base.update(spec)
    return read_plan({"metadata": {"name": "smoke", "namespace": "qa", "generation": 4}, "spec": base})


def by_type(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status["conditions"]}


def test_next_run_time_in_the_plans_time_zone() -> None:
    assert next_run_time("*/30 * * * *", "", NOW) == dt.datetime(2026, 11, 21, 20, 0, tzinfo=dt.UTC)
    # 09:00 in Shanghai (UTC+8) is 01:00 UTC
    assert next_run_time("0 9 * * *", "Asia/Shanghai", NOW) == dt.datetime(2026, 11, 22, 1, 0, tzinfo=dt.UTC)
    # New York in winter is UTC-5; in summer UTC-4
    assert next_run_time("0 9 * * *", "America/New_York", NOW).hour == 14
    summer = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)
    assert next_run_time("0 9 * * *", "America/New_York", summer).hour == 13
    assert next_run_time("@daily", "", NOW) == dt.datetime(2026, 11, 22, tzinfo=dt.UTC)


def test_scheduled_status() -> None:
    status = scheduled_status(plan(timeZone="Asia/Shanghai", crontab="0 9 * * *"), {}, "smoke", NOW)
    assert status["phase"] == "Scheduled"
    assert status["observedGeneration"] == 4
    assert status["cronJobName"] == "smoke"
    assert status["nextRunTime"] == "2026-11-22T01:00:00Z"
    conditions = by_type(status)
    assert conditions["Valid"]["status"] == "True"
    assert conditions["Ready"]["status"] == "True" and conditions["Ready"]["reason"] == "CronJobReady"
    assert conditions["Ready"]["lastTransitionTime"] == "2026-11-21T19:42:10Z"


def test_suspended_status_has_no_next_run() -> None:
    status = scheduled_status(plan(enabled=False), {}, "smoke", NOW)
    assert status["phase"] == "Suspended"
    assert status["nextRunTime"] is None
    assert by_type(status)["Ready"]["reason"] == "Suspended"


def test_running_phase_is_kept_while_a_run_is_active() -> None:
    assert scheduled_status(plan(), {}, "smoke", NOW, running=True)["phase"] == "Running"


def test_transition_time_only_moves_when_status_changes() -> None:
    first = scheduled_status(plan(), {}, "smoke", NOW)
    later = NOW + dt.timedelta(minutes=5)
    second = scheduled_status(plan(), first, "smoke", later)
    assert by_type(second)["Valid"]["lastTransitionTime"] == "2026-11-21T19:42:10Z"
    assert not changed(first, second)  # a resync with nothing new writes nothing
    with_error = invalid_status(_error(), 5, second, later, cronjob_kept=True)
    assert by_type(with_error)["Valid"]["lastTransitionTime"] == "2026-11-21T19:47:10Z"
    assert changed(second, with_error)


def _error() -> PlanError:
    try:
        plan(crontab="0 0 0 * * *")
    except PlanError as error:
        return error
    raise AssertionError("the crontab should be invalid")


def test_invalid_status_names_the_field_and_keeps_the_cronjob() -> None:
    old = scheduled_status(plan(), {}, "smoke", NOW)
    status = invalid_status(_error(), 5, old, NOW, cronjob_kept=True)
    assert status["phase"] == "Invalid"
    assert status["observedGeneration"] == 5
    valid = by_type(status)["Valid"]
    assert valid["status"] == "False" and valid["reason"] == "InvalidCrontab"
    assert valid["message"].startswith("spec.crontab: '0 0 0 * * *' has 6 fields")
    ready = by_type(status)["Ready"]
    assert (
        ready["status"] == "True"
        and ready["reason"] == "LastValidCronJobKept"
        and "smoke" in ready["message"]
    )
    assert "cronJobName" not in status and "nextRunTime" not in status  # the old values stay


def test_invalid_from_the_start() -> None:
    status = invalid_status(_error(), 1, {}, NOW, cronjob_kept=False)
    assert by_type(status)["Ready"]["status"] == "False"
    assert by_type(status)["Ready"]["reason"] == "InvalidSpec"


def test_other_conditions_are_kept() -> None:
    old = {"conditions": [{"type": "LastRunSucceeded", "status": "True", "reason": "Passed"}]}
    status = scheduled_status(plan(), old, "smoke", NOW)
    assert [c["type"] for c in status["conditions"]] == ["LastRunSucceeded", "Valid", "Ready"]
