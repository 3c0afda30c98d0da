"""Finished Jobs and Pods -> lastRun, history, events; Kubernetes failure reasons."""

import datetime as dt
import json
from typing import Any

import pytest

from tep_operator.runs import event_for, job_active, parse_message, phase_after, record_run, run_result
from tests.messages import runner_message

NOW = dt.datetime(2026, 11, 21, 20, 0, tzinfo=dt.UTC)


def job(
    name: str = "smoke-29012345",
    *,
    condition: str | None = "Complete",
    reason: str = "",
    shards: int = 1,
    trigger: str = "schedule",
    start: str = "2026-11-21T19:42:00Z",
    end: str = "2026-11-21T19:42:41Z",
) -> dict:
    status: dict[str, Any] = {"startTime": start}
    if condition:
        status["conditions"] = [
            {"type": condition, "status": "True", "reason": reason, "message": "m", "lastTransitionTime": end}
        ]
        if condition == "Complete":
            status["completionTime"] = end
    else:
        status["active"] = 1
    return {
        "metadata": {
            "name": name,
            "namespace": "qa",
            "labels": {"tep.dev/trigger": trigger},
            "annotations": {"tep.dev/plan-name": "smoke"},
        },
        "spec": {"completions": shards} if shards > 1 else {},
        "status": status,
    }


def message(**fields: Any) -> str:
    return runner_message(
        **{"workers": 3, "reportPath": "qa/smoke/20261121T194200Z-29012345/report.html", **fields}
    )


def pod(
    *,
    text: str | None = None,
    terminated: dict | None = None,
    waiting: dict | None = None,
    index: int = 0,
    reason: str | None = None,
    created: str = "2026-11-21T19:42:01Z",
) -> dict:
    state: dict[str, Any] = {}
    if terminated is not None or text is not None:
        state["terminated"] = {"exitCode": 0, "reason": "Completed", **(terminated or {})}
        if text is not None:
            state["terminated"]["message"] = text
    if waiting:
        state["waiting"] = waiting
    status: dict[str, Any] = {"containerStatuses": [{"name": "runner", "state": state}]}
    if reason:
        status.update(reason=reason, message="The node was low on resource: memory.")
    return {
        "metadata": {
            "creationTimestamp": created,
            "annotations": {"batch.kubernetes.io/job-completion-index": str(index)},
        },
        "status": status,
    }


def test_a_passed_run_reads_the_runner_summary() -> None:
    run = run_result(job(), [pod(text=message())])
    assert run == {
        "name": "smoke-29012345",
        "trigger": "schedule",
        "result": "Passed",
        "startTime": "2026-11-21T19:42:00Z",
        "completionTime": "2026-11-21T19:42:41Z",
        "durationSeconds": 3.6,
        "total": 9,
        "passed": 9,
        "failed": 0,
        "errors": 0,
        "skipped": 0,
        "xfailed": 0,
        "xpassed": 0,
        "flaky": 0,
        "workers": 3,
        "shards": 1,
        "reportPath": "qa/smoke/20261121T194200Z-29012345/report.html",
        "failedTests": [],
    }


def test_a_failed_run() -> None:
    text = message(
        result="Failed", passed=7, failed=2, failedTests=["test_a.py::test_x", "test_b.py::test_y"]
    )
    run = run_result(
        job(condition="Failed", reason="BackoffLimitExceeded", trigger="manual"),
        [pod(text=text, terminated={"exitCode": 1, "reason": "Error"})],
    )
    assert run["result"] == "Failed" and run["failed"] == 2 and run["passed"] == 7
    assert run["trigger"] == "manual"
    assert run["failedTests"] == ["test_a.py::test_x", "test_b.py::test_y"]
    assert "reason" not in run


def test_expected_failures_and_unexpected_passes_have_counts_of_their_own() -> None:
    run = run_result(job(), [pod(text=message(total=9, passed=6, xfailed=2, xpassed=1))])
    assert (run["result"], run["passed"], run["xfailed"], run["xpassed"], run["skipped"]) == (
        "Passed", 6, 2, 1, 0,
    )  # fmt: skip


def test_a_run_stopped_at_its_first_failure_says_so() -> None:
    text = message(result="Failed", passed=3, failed=1, reason="stopping after 1 failures (-x/--maxfail=1)")
    run = run_result(job(condition="Failed", reason="BackoffLimitExceeded"), [pod(text=text)])
    assert (run["result"], run["reason"]) == ("Failed", "stopping after 1 failures (-x/--maxfail=1)")


def test_an_error_reported_by_the_runner_keeps_its_reason() -> None:
    text = message(result="Error", total=0, passed=0, reason="no tests were collected")
    run = run_result(job(condition="Failed", reason="BackoffLimitExceeded"), [pod(text=text)])
    assert run["result"] == "Error" and run["reason"] == "no tests were collected"


def test_oom_killed_without_a_message() -> None:
    run = run_result(
        job(condition="Failed", reason="BackoffLimitExceeded"),
        [pod(terminated={"exitCode": 137, "reason": "OOMKilled"})],
    )
    assert run["result"] == "Error"
    assert run["reason"].startswith("OOMKilled")
    assert run["durationSeconds"] == 41.0  # from the Job's times, the runner never said
    assert run["total"] == 0


def test_deadline_exceeded() -> None:
    run = run_result(job(condition="Failed", reason="DeadlineExceeded"), [])
    assert run["result"] == "Error"
    assert run["reason"] == "DeadlineExceeded: the run exceeded spec.activeDeadlineSeconds and was stopped"


HANG = "tests/test_x.py::test_hang"
STOPPED = f"stopped by SIGTERM after 29.8 s (activeDeadlineSeconds is 30 s); stopped while running {HANG}"


def deadline_pod(text: str | None, exit_code: int = 2) -> dict:
    """A runner pod the kubelet failed at its activeDeadlineSeconds (after SIGTERM and the runner's exit)."""
    killed = pod(text=text, terminated={"exitCode": exit_code, "reason": "Error"}, reason="DeadlineExceeded")
    killed["status"]["message"] = "Pod was active on the node longer than the specified deadline"
    killed["spec"] = {"activeDeadlineSeconds": 30}
    return killed


@pytest.mark.parametrize("job_reason", ["BackoffLimitExceeded", "DeadlineExceeded"])
def test_a_deadline_killed_pod_with_a_message_gives_its_counts_and_names_the_deadline(
    job_reason: str,
) -> None:
    text = message(
        result="Error", total=3, passed=2, failed=1, reason=STOPPED, failedTests=[HANG], timedOut=[HANG]
    )
    run = run_result(job(condition="Failed", reason=job_reason), [deadline_pod(text)])
    assert run["result"] == "Error"
    assert run["reason"] == f"DeadlineExceeded: spec.activeDeadlineSeconds (30 s) exceeded; {STOPPED}"
    assert (run["total"], run["passed"], run["failed"]) == (3, 2, 1)
    assert run["failedTests"] == [HANG] and run["timedOut"] == [HANG]
    assert run["durationSeconds"] == 3.6  # the runner's own


def test_a_deadline_killed_pod_keeps_a_verdict_the_runner_completed() -> None:
    run = run_result(job(condition="Failed", reason="BackoffLimitExceeded"), [deadline_pod(message(), 0)])
    assert run["result"] == "Passed" and "reason" not in run and "timedOut" not in run


def test_a_deadline_killed_pod_without_a_message() -> None:
    run = run_result(job(condition="Failed", reason="BackoffLimitExceeded"), [deadline_pod(None, 137)])
    assert run["result"] == "Error"
    assert (
        run["reason"]
        == "DeadlineExceeded: spec.activeDeadlineSeconds (30 s) exceeded; the runner left no summary"
    )


def test_image_pull_failure_and_eviction() -> None:
    pulled = run_result(
        job(condition="Failed", reason="DeadlineExceeded"),
        [pod(waiting={"reason": "ImagePullBackOff", "message": "Back-off pulling image x"})],
    )
    assert pulled["reason"] == "ImagePullBackOff: Back-off pulling image x"
    evicted = run_result(job(condition="Failed", reason="BackoffLimitExceeded"), [pod(reason="Evicted")])
    assert evicted["reason"].startswith("Evicted: The node was low on resource")


def test_garbage_in_the_message_is_not_a_summary() -> None:
    assert parse_message("Traceback (most recent call last): ...") is None
    assert parse_message(json.dumps({"v": 2, "result": "Passed"})) is None
    run = run_result(
        job(condition="Failed", reason="BackoffLimitExceeded"),
        [pod(text="Traceback", terminated={"exitCode": 2, "reason": "Error"})],
    )
    assert run["result"] == "Error" and "exited with code 2" in run["reason"]


def test_a_job_still_running_has_no_result() -> None:
    running = job(condition=None)
    assert run_result(running, []) is None
    assert job_active(running)
    assert not job_active(job())


def test_shards_are_summed_and_the_report_is_the_merged_one() -> None:
    shard0 = message(
        total=5, passed=5, workers=2, durationSeconds=3.0, reportPath="qa/smoke/R/shard-0/report.html"
    )
    shard1 = message(
        result="Failed",
        total=4,
        passed=3,
        failed=1,
        workers=2,
        shard=1,
        durationSeconds=4.5,
        reportPath="qa/smoke/R/shard-1/report.html",
        failedTests=["t.py::x"],
    )
    run = run_result(
        job(shards=2, condition="Failed", reason="FailedIndexes"),
        [pod(text=shard0, index=0), pod(text=shard1, index=1)],
    )
    assert (run["total"], run["passed"], run["failed"], run["workers"], run["shards"]) == (9, 8, 1, 4, 2)
    assert run["result"] == "Failed"
    assert run["durationSeconds"] == 4.5
    assert run["reportPath"] == "qa/smoke/R/report.html"


def test_a_collection_error_every_shard_reported_counts_once() -> None:
    # every shard collects the whole suite, so each reports the file that did not import
    broken = {
        "result": "Error",
        "total": 1,
        "errors": 1,
        "failedTests": ["t.py"],
        "reason": "collection errors in t.py",
    }
    run = run_result(
        job(shards=2, condition="Failed", reason="FailedIndexes"),
        [pod(text=message(**broken), index=0), pod(text=message(**broken, shard=1), index=1)],
    )
    assert (run["result"], run["total"], run["errors"], run["failedTests"]) == ("Error", 1, 1, ["t.py"])


def test_a_shard_without_a_summary_is_an_error_naming_it() -> None:
    run = run_result(
        job(shards=2, condition="Failed", reason="FailedIndexes"),
        [pod(text=message(), index=0), pod(terminated={"exitCode": 137, "reason": "OOMKilled"}, index=1)],
    )
    assert run["result"] == "Error" and run["reason"].startswith("shard 1: OOMKilled")


def test_failed_tests_are_capped_at_20() -> None:
    text = message(result="Failed", failed=30, failedTests=[f"t.py::test_{i}" for i in range(30)])
    assert len(run_result(job(), [pod(text=text)])["failedTests"]) == 20


def entry(name: str, start: str, result: str = "Passed") -> dict[str, Any]:
    return {
        "name": name,
        "trigger": "schedule",
        "result": result,
        "startTime": start,
        "completionTime": start,
        "passed": 1,
        "failed": 0,
    }


def test_record_run_prepends_history_caps_it_and_sets_last_run() -> None:
    old = {
        "history": [entry(f"smoke-{i}", f"2026-11-21T1{i}:00:00Z") for i in range(3)],
        "lastRun": entry("smoke-2", "2026-11-21T12:00:00Z"),
        "observedGeneration": 2,
    }
    new = run_result(job(), [pod(text=message())])
    patch = record_run(old, new, history_limit=3, now=NOW)
    assert [h["name"] for h in patch["history"]] == ["smoke-29012345", "smoke-2", "smoke-1"]
    assert patch["lastRun"] == new
    assert patch["lastSuccessfulTime"] == "2026-11-21T19:42:41Z"
    (cond,) = patch["conditions"]
    assert cond["type"] == "LastRunSucceeded" and cond["status"] == "True" and cond["reason"] == "Passed"
    # recording the same run again changes nothing
    assert record_run({**old, **patch}, new, history_limit=3, now=NOW) is None


def test_a_late_older_run_slots_into_history_but_is_not_the_last_run() -> None:
    newer = entry("smoke-2", "2026-11-21T12:00:00Z")
    old = {"history": [newer], "lastRun": newer}
    late = {**entry("smoke-1", "2026-11-21T11:00:00Z", "Failed"), "total": 1}
    patch = record_run(old, late, history_limit=10, now=NOW)
    assert [h["name"] for h in patch["history"]] == ["smoke-2", "smoke-1"]
    assert "lastRun" not in patch and "conditions" not in patch


def test_history_limit_zero_keeps_none() -> None:
    patch = record_run({}, entry("a", "2026-11-21T11:00:00Z"), history_limit=0, now=NOW)
    assert patch["history"] == [] and patch["lastRun"]["name"] == "a"


def test_failed_run_condition_and_event() -> None:
    run = run_result(
        job(condition="Failed", reason="BackoffLimitExceeded"),
        [pod(text=message(result="Failed", passed=8, failed=1))],
    )
    patch = record_run({}, run, 10, NOW)
    assert patch["conditions"][0]["status"] == "False" and patch["conditions"][0]["reason"] == "Failed"
    assert "lastSuccessfulTime" not in patch
    kind, reason, text = event_for(run)
    assert (kind, reason) == ("Warning", "RunFailed")
    assert "9 tests, 8 passed, 1 failed" in text and "report qa/smoke/" in text
    assert event_for(run_result(job(), [pod(text=message())]))[:2] == ("Normal", "RunSucceeded")


@pytest.mark.parametrize(
    ("old", "idle", "active", "expected"),
    [
        ("Scheduled", "Scheduled", 1, "Running"),
        ("Running", "Scheduled", 0, "Scheduled"),
        ("Running", "Suspended", 0, "Suspended"),
        ("Invalid", "Scheduled", 1, None),
        ("Running", None, 0, None),
    ],
)
def test_phase_after(old: str, idle: str | None, active: int, expected: str | None) -> None:
    assert phase_after(old, idle, active) == expected
