"""What the operator has seen (tep_operator.seen): the answers its decisions read."""

from typing import Any

import pytest

from tep_operator import names
from tep_operator.cronjob import SPEC_HASH
from tep_operator.seen import Seen


def plan(name: str = "smoke", **spec: Any) -> dict[str, Any]:
    body = {"crontab": "*/30 * * * *", "source": {"configMap": {"name": "t"}}, **spec}
    return {
        "apiVersion": names.API_VERSION,
        "kind": names.KIND,
        "metadata": {"name": name, "namespace": "qa", "uid": "u1", "generation": 1},
        "spec": body,
    }


def job(name: str, active: bool, plan_name: str = "smoke") -> dict[str, Any]:
    status = (
        {"active": 1} if active else {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
    )
    return {
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": "qa",
            "labels": names.labels(plan_name),
            "annotations": names.annotations(plan_name),
        },
        "status": status,
    }


def cronjob() -> dict[str, Any]:
    return {
        "kind": "CronJob",
        "metadata": {
            "name": "smoke",
            "namespace": "qa",
            "labels": names.labels("smoke"),
            "annotations": {**names.annotations("smoke"), SPEC_HASH: "abc"},
        },
        "spec": {"schedule": "* * * * *"},
    }


def test_active_runs_follow_the_jobs_events() -> None:
    seen = Seen()
    seen.job_seen(job("a", True))
    seen.job_seen(job("b", True))
    assert sorted(seen.active(("qa", "smoke"))) == ["a", "b"]
    seen.job_seen(job("a", False))  # finished
    assert seen.active(("qa", "smoke")) == ["b"]
    seen.job_gone(job("b", True))
    assert seen.active(("qa", "smoke")) == [] and seen.active(("qa", "other")) == []


def test_only_valid_plans_are_kept_and_a_plan_made_invalid_is_dropped() -> None:
    seen = Seen()
    seen.plan_seen(plan())
    found = seen.plan(("qa", "smoke"))
    assert found is not None and found.crontab == "*/30 * * * *"
    seen.plan_seen(plan(crontab="not a crontab"))
    assert seen.plan(("qa", "smoke")) is None
    seen.plan_seen(plan())
    seen.plan_gone(("qa", "smoke"))
    assert seen.plan(("qa", "smoke")) is None


def test_of_a_cronjob_only_its_spec_hash_is_kept() -> None:
    seen = Seen()
    live = cronjob()
    seen.cronjob_seen(live)
    assert seen.cronjob(("qa", "smoke")) == {"metadata": {"annotations": {SPEC_HASH: "abc"}}}
    seen.cronjob_gone(live)
    assert seen.cronjob(("qa", "smoke")) is None


def test_our_own_writes_are_seen_before_their_watch_events() -> None:
    seen = Seen()
    created = {**job("manual", True), "status": {}}  # a Job just created has no status yet
    seen.written(created)
    assert seen.active(("qa", "smoke")) == ["manual"]
    seen.written(cronjob())
    assert seen.cronjob(("qa", "smoke")) == {"metadata": {"annotations": {SPEC_HASH: "abc"}}}
    with pytest.raises(ValueError, match="Pod"):
        seen.written({"kind": "Pod", "metadata": {"name": "p", "namespace": "qa"}})
