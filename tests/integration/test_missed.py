"""Missed schedules, from the real operator against the emulator.

The emulator has no CronJob controller: nothing starts a run unless the test plays it, which
is exactly "the controller stopped working". The operator's clock is moved forward (its one
`now()`), so that hours pass in a second; the emulator and kopf keep real time.
"""

import datetime as dt
import time

import prometheus_client
import pytest

from tep_operator import reconciler
from tests.emulator import wait_for
from tests.integration.harness import make_plan
from tests.integration.notifying import add_secret, target
from tests.receiver import Receiver


class Clock:
    """The operator's clock, `ahead` of the real one."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.ahead = dt.timedelta()
        monkeypatch.setattr(reconciler, "now", self.now)

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.ahead


def on_schedule(status: dict) -> dict:
    return next((c for c in status.get("conditions") or [] if c["type"] == "OnSchedule"), {})


def overdue_metric(plan: str = "smoke") -> float | None:
    return prometheus_client.REGISTRY.get_sample_value(
        "tep_schedule_overdue", {"namespace": "qa", "plan": plan}
    )


def parse(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def first_hour_after(moment: dt.datetime) -> dt.datetime:
    return moment.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)


HOURLY = {"crontab": "0 * * * *", "startingDeadlineSeconds": 60}


def test_no_run_starts_when_due(cluster, start_operator, logs, monkeypatch):
    clock = Clock(monkeypatch)
    with Receiver() as receiver:
        add_secret(cluster, {"url": receiver.url})
        start_operator(resync_seconds=0.3)
        cluster.create_plan(make_plan(notify=[target(on=["Missed"])], **HOURLY))
        status = cluster.wait_status(lambda s: on_schedule(s).get("status") == "True")
        assert on_schedule(status)["reason"] == "OnSchedule"
        due = first_hour_after(parse(status["scheduleSince"]))

        clock.ahead = dt.timedelta(hours=2)  # the due run should have started; no Job appears
        status = cluster.wait_status(
            lambda s: on_schedule(s).get("status") == "False", message="the resync never saw the missed run"
        )
        condition = on_schedule(status)
        assert condition["reason"] == "MissedSchedule"
        assert condition["message"] == (
            f"the run due at {stamp(due)} did not start within startingDeadlineSeconds (60s)"
        )
        (event,) = wait_for(lambda: cluster.events(reason="MissedSchedule"))
        assert event.type == "Warning" and event.message == condition["message"]
        wait_for(lambda: overdue_metric() == 1, message="tep_schedule_overdue not 1")
        wait_for(lambda: receiver.received, message="no Missed notification")
        receiver.settle()
        (body,) = receiver.bodies()
        assert (body["trigger"], body["result"], body["dueTime"], body["run"]) == (
            "Missed",
            "Missed",
            stamp(due),
            None,
        )
        assert body["dedupeKey"] == f"qa/smoke/missed@{stamp(due)}/team/Missed"

        # The CronJob controller is back: a run starts. That clears the condition.
        now = clock.now()
        scheduled = now.replace(minute=0, second=0, microsecond=0)
        cluster.batch.patch_namespaced_cron_job_status(
            "smoke", "qa", {"status": {"lastScheduleTime": stamp(scheduled)}}
        )
        cluster.start_job("smoke-29013000", start=stamp(scheduled))
        status = cluster.wait_status(lambda s: on_schedule(s).get("status") == "True")
        assert on_schedule(status)["reason"] == "OnSchedule"
        wait_for(lambda: overdue_metric() == 0, message="tep_schedule_overdue not back to 0")
        receiver.settle()
        assert len(receiver.received) == 1 and len(cluster.events(reason="MissedSchedule")) == 1


def test_a_cronjob_suspended_by_hand_while_the_operator_was_down(cluster, start_operator, logs, monkeypatch):
    clock = Clock(monkeypatch)
    first = start_operator()
    cluster.create_plan(make_plan(**HOURLY))
    status = cluster.wait_status(lambda s: on_schedule(s).get("status") == "True")
    due = first_hour_after(parse(status["scheduleSince"]))
    first.stop()
    cluster.batch.patch_namespaced_cron_job("smoke", "qa", {"spec": {"suspend": True}})
    clock.ahead = dt.timedelta(hours=3)

    start_operator()
    wait_for(lambda: cluster.cronjob()["spec"]["suspend"] is False, message="the suspension was not undone")
    status = cluster.wait_status(lambda s: on_schedule(s).get("status") == "False")
    assert on_schedule(status)["message"].startswith(f"the run due at {stamp(due)} did not start")
    wait_for(lambda: cluster.events(reason="MissedSchedule"))

    cluster.start_job("smoke-29013001", start=stamp(clock.now()))
    cluster.wait_status(lambda s: on_schedule(s).get("status") == "True", message="not cleared by a run")


def test_a_suspended_plan_misses_nothing(cluster, start_operator, logs, monkeypatch):
    clock = Clock(monkeypatch)
    start_operator(resync_seconds=0.3)
    cluster.create_plan(make_plan(enabled=False, **HOURLY))
    cluster.create_plan(make_plan("witness", **HOURLY))  # enabled: the resync does see its missed run
    cluster.wait_status(lambda s: on_schedule(s).get("reason") == "Suspended")
    cluster.wait_status(lambda s: on_schedule(s).get("reason") == "OnSchedule", name="witness")
    clock.ahead = dt.timedelta(hours=3)
    cluster.wait_status(lambda s: on_schedule(s).get("status") == "False", name="witness")
    assert on_schedule(cluster.status())["status"] == "True"
    assert [e.involved_object.name for e in cluster.events(reason="MissedSchedule")] == ["witness"]


def test_a_restart_after_downtime_with_a_working_cronjob_misses_nothing(
    cluster, start_operator, logs, monkeypatch
):
    """The plan's status still has the old lastScheduleTime when the operator comes back; the
    CronJob's own is the truth, so nothing is reported missed, not even for a moment."""
    clock = Clock(monkeypatch)
    first = start_operator()
    cluster.create_plan(make_plan(**HOURLY))
    cluster.wait_status(lambda s: on_schedule(s).get("status") == "True")
    first.stop()
    clock.ahead = dt.timedelta(hours=3)  # meanwhile the CronJob controller started every run
    scheduled = clock.now().replace(minute=0, second=0, microsecond=0)
    cluster.batch.patch_namespaced_cron_job_status(
        "smoke", "qa", {"status": {"lastScheduleTime": stamp(scheduled)}}
    )

    start_operator(resync_seconds=0.3)
    cluster.wait_status(lambda s: s.get("lastScheduleTime") == stamp(scheduled))
    time.sleep(1)  # a few resyncs
    assert on_schedule(cluster.status())["status"] == "True"
    assert not cluster.events(reason="MissedSchedule")
