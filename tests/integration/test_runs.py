"""Results back to the TestPlan: runs tracked from Jobs and Pods, run now, catch-up, history.

`Cluster` plays the CronJob controller, Job controller and kubelet (the emulator has none):
it starts Jobs from the CronJob's template and ends them as Kubernetes does.
"""

import pathlib
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tep_operator import names
from tests.emulator import Emulator, wait_for
from tests.integration.harness import Cluster, OperatorThread, make_plan
from tests.messages import runner_message as summary


def by_type(status: dict) -> dict:
    return {c["type"]: c for c in status.get("conditions") or []}


@pytest.fixture()
def scheduled(cluster: Cluster, operator: OperatorThread) -> Cluster:
    cluster.create_plan(make_plan(historyLimit=3))
    cluster.wait_status(lambda s: s.get("phase") == "Scheduled")
    return cluster


# The labels on a Job's pods differ by version (batch.kubernetes.io/job-name only from 1.27):
# the counts must come from the pod's termination message on both.
VERSIONS = pytest.mark.parametrize("kube", [26, 30], indirect=True, ids=["k8s-1.26", "k8s-1.30"])


@VERSIONS
def test_a_passed_run(scheduled: Cluster) -> None:
    cluster = scheduled
    cluster.start_job("smoke-29012345")
    cluster.wait_status(lambda s: s.get("phase") == "Running", message="never Running while the Job ran")
    cluster.finish_pod(
        "smoke-29012345", message=summary(reportPath="qa/smoke/20261121T194200Z-29012345/report.html")
    )
    cluster.finish_job("smoke-29012345")
    status = cluster.wait_status(lambda s: s.get("lastRun"), message="the run never reached the status")
    last = status["lastRun"]
    assert last == {
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
        "workers": 2,
        "shards": 1,
        "reportPath": "qa/smoke/20261121T194200Z-29012345/report.html",
        "failedTests": [],
    }
    assert status["history"][0]["name"] == "smoke-29012345"
    assert status["lastSuccessfulTime"] == "2026-11-21T19:42:41Z"
    assert by_type(status)["LastRunSucceeded"]["status"] == "True"
    cluster.wait_status(lambda s: s.get("phase") == "Scheduled", message="not back to Scheduled")
    (event,) = wait_for(lambda: cluster.events(reason="RunSucceeded"))
    assert (
        event.type == "Normal"
        and "9 tests, 9 passed" in event.message
        and "report qa/smoke/" in event.message
    )


def test_last_schedule_time_comes_from_the_cronjob(scheduled: Cluster) -> None:
    scheduled.batch.patch_namespaced_cron_job_status(
        "smoke", "qa", {"status": {"lastScheduleTime": "2026-11-21T19:30:00Z"}}
    )
    scheduled.wait_status(lambda s: s.get("lastScheduleTime") == "2026-11-21T19:30:00Z")


@VERSIONS
def test_a_failed_run(scheduled: Cluster) -> None:
    cluster = scheduled
    text = summary(
        "Failed", passed=7, failed=2, failedTests=["test_login.py::test_expired", "test_a.py::test_b"]
    )
    cluster.run(
        "smoke-29012346", message=text, exit_code=1, reason="Error", failed_reason="BackoffLimitExceeded"
    )
    status = cluster.wait_status(lambda s: s.get("lastRun"))
    assert status["lastRun"]["result"] == "Failed"
    assert (status["lastRun"]["passed"], status["lastRun"]["failed"]) == (7, 2)
    assert status["lastRun"]["failedTests"] == ["test_login.py::test_expired", "test_a.py::test_b"]
    assert by_type(status)["LastRunSucceeded"]["status"] == "False"
    assert "lastSuccessfulTime" not in status
    (event,) = wait_for(lambda: cluster.events(reason="RunFailed"))
    assert event.type == "Warning" and "2 failed" in event.message


def test_an_oom_killed_pod_without_a_message(scheduled: Cluster) -> None:
    scheduled.run("smoke-29012347", exit_code=137, reason="OOMKilled", failed_reason="BackoffLimitExceeded")
    last = scheduled.wait_status(lambda s: s.get("lastRun"))["lastRun"]
    assert last["result"] == "Error"
    assert last["reason"].startswith("OOMKilled")
    assert last["durationSeconds"] == 41.0  # from the Job's own times
    wait_for(lambda: scheduled.events(reason="RunFailed"))


def test_a_deadline_exceeded(scheduled: Cluster) -> None:
    scheduled.start_job("smoke-29012348")
    scheduled.finish_job("smoke-29012348", failed_reason="DeadlineExceeded")  # the pod was killed, no message
    last = scheduled.wait_status(lambda s: s.get("lastRun"))["lastRun"]
    assert last["result"] == "Error"
    assert last["reason"].startswith("DeadlineExceeded: the run exceeded spec.activeDeadlineSeconds")


def test_a_pod_stopped_at_its_deadline_reports_what_its_runner_wrote(
    cluster: Cluster, operator: OperatorThread
) -> None:
    """The kubelet stops the runner pod at activeDeadlineSeconds; the runner reported before it exited."""
    cluster.create_plan(make_plan(activeDeadlineSeconds=30))
    cluster.wait_status(lambda s: s.get("phase") == "Scheduled")
    job = cluster.start_job("smoke-29012349")
    assert job["spec"]["template"]["spec"]["activeDeadlineSeconds"] == 30  # the kubelet's, to the second
    assert job["spec"]["activeDeadlineSeconds"] > 30  # the Job controller's, a backstop
    hang = "tests/test_x.py::test_hang"
    stopped = f"stopped by SIGTERM after 29.9 s (activeDeadlineSeconds is 30 s); stopped while running {hang}"
    text = summary("Error", total=3, passed=2, failed=1, reason=stopped, failedTests=[hang], timedOut=[hang])
    cluster.finish_pod(
        "smoke-29012349", message=text, exit_code=2, reason="Error", pod_reason="DeadlineExceeded"
    )
    cluster.finish_job(
        "smoke-29012349", failed_reason="BackoffLimitExceeded"
    )  # the pod failed, backoffLimit 0
    last = cluster.wait_status(lambda s: s.get("lastRun"))["lastRun"]
    assert last["result"] == "Error"
    assert last["reason"] == f"DeadlineExceeded: spec.activeDeadlineSeconds (30 s) exceeded; {stopped}"
    assert (last["total"], last["passed"], last["failed"]) == (3, 2, 1)  # what the volume's summary.json says
    assert last["failedTests"] == [hang] and last["timedOut"] == [hang]
    (event,) = wait_for(lambda: cluster.events(reason="RunFailed"))
    assert "spec.activeDeadlineSeconds (30 s) exceeded" in event.message and hang in event.message


def test_history_is_capped_newest_first(scheduled: Cluster) -> None:
    for minute in range(5):
        scheduled.run(
            f"smoke-2901235{minute}",
            message=summary(),
            start=f"2026-11-21T19:4{minute}:00Z",
            end=f"2026-11-21T19:4{minute}:30Z",
        )
        scheduled.wait_status(lambda s, m=minute: (s.get("lastRun") or {}).get("name") == f"smoke-2901235{m}")
    history = scheduled.status()["history"]
    assert [h["name"] for h in history] == [
        "smoke-29012354",
        "smoke-29012353",
        "smoke-29012352",
    ]  # historyLimit 3


def test_run_now_once_per_value(kube: Emulator, cluster: Cluster, tmp_path: pathlib.Path) -> None:
    with OperatorThread(kube, tmp_path) as first:
        cluster.create_plan(make_plan(enabled=False))
        cluster.wait_status(lambda s: s.get("phase") == "Suspended")
        cluster.request_run("2026-11-21T19:42:00Z")
        (job,) = wait_for(lambda: cluster.jobs(**{"tep.dev/trigger": "manual"}), message="no manual Job")
        assert job["metadata"]["name"] == names.manual_job_name("smoke", "2026-11-21T19:42:00Z")
        assert job["metadata"]["annotations"]["tep.dev/run-requested-at"] == "2026-11-21T19:42:00Z"
        template = cluster.cronjob()["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        manual = job["spec"]["template"]["spec"]
        assert manual["containers"][0]["image"] == template["containers"][0]["image"]
        assert manual["securityContext"] == template["securityContext"]
        status = cluster.wait_status(lambda s: s.get("lastRunRequest") == "2026-11-21T19:42:00Z")
        assert status["phase"] == "Running"
        wait_for(lambda: cluster.events(reason="RunStarted"))
        # the same value again, as a GitOps re-sync writes it: no second Job
        cluster.request_run("2026-11-21T19:42:00Z")
        cluster.patch_plan({"metadata": {"labels": {"resync": "1"}}})
        wait_for(lambda: first.kube.get_plan("qa", "smoke")["metadata"]["labels"] == {"resync": "1"})
    with OperatorThread(kube, tmp_path) as restarted:  # and after a restart
        cluster.patch_plan({"metadata": {"labels": {"resync": "2"}}})
        wait_for(lambda: restarted.kube.get_plan("qa", "smoke")["metadata"]["labels"] == {"resync": "2"})
        assert len(cluster.jobs(**{"tep.dev/trigger": "manual"})) == 1
        # the manual run finishes and is reported as manual
        cluster.finish_pod(job["metadata"]["name"], message=summary())
        cluster.finish_job(job["metadata"]["name"])
        last = cluster.wait_status(lambda s: s.get("lastRun"))["lastRun"]
        assert last["trigger"] == "manual" and last["result"] == "Passed"
        cluster.wait_status(lambda s: s.get("phase") == "Suspended")
        # a new value is a new run
        cluster.request_run("2026-11-21T20:00:00Z")
        wait_for(lambda: len(cluster.jobs(**{"tep.dev/trigger": "manual"})) == 2, message="no second run")
    assert len(cluster.events(reason="RunStarted")) == 2


def test_forbid_queues_a_request_behind_the_active_run(scheduled: Cluster) -> None:
    cluster = scheduled
    cluster.start_job("smoke-29012360")
    cluster.wait_status(lambda s: s.get("phase") == "Running")
    cluster.request_run("now-please")
    status = cluster.wait_status(lambda s: s.get("pendingRunRequest") == "now-please", message="not queued")
    assert status.get("lastRunRequest") is None
    (event,) = wait_for(lambda: cluster.events(reason="RunQueued"))
    assert "smoke-29012360" in event.message and "Forbid" in event.message
    assert cluster.jobs(**{"tep.dev/trigger": "manual"}) == []  # not doubled while the run is active

    cluster.finish_pod("smoke-29012360", message=summary())
    cluster.finish_job("smoke-29012360")
    (manual,) = wait_for(
        lambda: cluster.jobs(**{"tep.dev/trigger": "manual"}), message="the queued run never ran"
    )
    assert manual["metadata"]["name"] == names.manual_job_name("smoke", "now-please")
    status = cluster.wait_status(lambda s: s.get("lastRunRequest") == "now-please")
    assert status.get("pendingRunRequest") is None


def test_replace_stops_the_active_run_and_starts_the_requested_one(
    cluster: Cluster, operator: OperatorThread
) -> None:
    cluster.create_plan(make_plan(concurrencyPolicy="Replace"))
    cluster.wait_status(lambda s: s.get("phase") == "Scheduled")
    cluster.start_job("smoke-29012361")
    pod = cluster.create_pod("smoke-29012361")
    cluster.wait_status(lambda s: s.get("phase") == "Running")
    cluster.request_run("replace-it")
    (manual,) = wait_for(lambda: cluster.jobs(**{"tep.dev/trigger": "manual"}), message="no requested run")
    assert manual["metadata"]["name"] == names.manual_job_name("smoke", "replace-it")
    # the active Job was deleted (and with it, by garbage collection, its pod)
    wait_for(lambda: [j["metadata"]["name"] for j in cluster.jobs()] == [manual["metadata"]["name"]])
    assert pod not in [p.metadata.name for p in cluster.core.list_namespaced_pod("qa").items]
    status = cluster.wait_status(lambda s: s.get("lastRunRequest") == "replace-it")
    assert status.get("pendingRunRequest") is None and status["phase"] == "Running"
    assert cluster.events(reason="RunQueued") == []
    (event,) = wait_for(lambda: cluster.events(reason="RunStarted"))
    assert manual["metadata"]["name"] in event.message


def test_allow_starts_the_requested_run_beside_the_active_one(
    cluster: Cluster, operator: OperatorThread
) -> None:
    cluster.create_plan(make_plan(concurrencyPolicy="Allow"))
    cluster.wait_status(lambda s: s.get("phase") == "Scheduled")
    cluster.start_job("smoke-29012362")
    cluster.wait_status(lambda s: s.get("phase") == "Running")
    cluster.request_run("beside-it")
    (manual,) = wait_for(lambda: cluster.jobs(**{"tep.dev/trigger": "manual"}), message="no requested run")
    assert sorted(j["metadata"]["name"] for j in cluster.jobs()) == sorted(
        ["smoke-29012362", manual["metadata"]["name"]]
    )
    cluster.wait_status(lambda s: s.get("lastRunRequest") == "beside-it")
    # both runs end and both are recorded; the phase stays Running while one is active
    cluster.finish_pod("smoke-29012362", message=summary())
    cluster.finish_job("smoke-29012362")
    cluster.wait_status(lambda s: (s.get("lastRun") or {}).get("name") == "smoke-29012362")
    assert cluster.status()["phase"] == "Running"
    cluster.finish_pod(manual["metadata"]["name"], message=summary("Failed", passed=8, failed=1), exit_code=1)
    cluster.finish_job(manual["metadata"]["name"], failed_reason="BackoffLimitExceeded")
    status = cluster.wait_status(lambda s: len(s.get("history") or []) == 2 and s.get("phase") == "Scheduled")
    assert {h["name"] for h in status["history"]} == {"smoke-29012362", manual["metadata"]["name"]}


def test_runner_cannot_start_is_said_at_once_once_per_reason(scheduled: Cluster) -> None:
    cluster = scheduled
    cluster.start_job("smoke-29012363")
    pod = cluster.create_pod("smoke-29012363")
    cluster.pod_cannot_start(pod, "ErrImagePull", 'failed to pull image "tep-runner:test": not found')
    (event,) = wait_for(lambda: cluster.events(reason="RunnerCannotStart"), message="no RunnerCannotStart")
    assert event.type == "Warning" and event.involved_object.name == "smoke"
    assert event.message.startswith(f"pod {pod}: ErrImagePull: ") and "not found" in event.message
    # the kubelet retries: back-off, then the same error again; one Event per kind of failure
    cluster.pod_cannot_start(pod, "ImagePullBackOff", 'Back-off pulling image "tep-runner:test"')
    wait_for(
        lambda: len(cluster.events(reason="RunnerCannotStart")) == 2, message="no Event for the back-off"
    )
    cluster.pod_cannot_start(pod, "ErrImagePull", 'failed to pull image "tep-runner:test": not found (again)')
    cluster.pod_cannot_start(pod, "ImagePullBackOff", 'Back-off pulling image "tep-runner:test" (again)')
    # a last, new kind on the same pod: its Event comes after the repeats were handled
    cluster.pod_cannot_start(pod, "CreateContainerConfigError", 'secret "creds" not found')
    wait_for(
        lambda: len(cluster.events(reason="RunnerCannotStart")) >= 3, message="no Event for the last kind"
    )
    kinds = sorted(e.message.split(": ")[1] for e in cluster.events(reason="RunnerCannotStart"))
    assert kinds == ["CreateContainerConfigError", "ErrImagePull", "ImagePullBackOff"], kinds


def test_catch_up_after_the_operator_was_down(
    kube: Emulator, cluster: Cluster, tmp_path: pathlib.Path
) -> None:
    with OperatorThread(kube, tmp_path):
        cluster.create_plan(make_plan())
        cluster.wait_status(lambda s: s.get("phase") == "Scheduled")
        cluster.run(
            "smoke-29012400", message=summary(), start="2026-11-21T18:00:00Z", end="2026-11-21T18:01:00Z"
        )
        cluster.wait_status(lambda s: (s.get("lastRun") or {}).get("name") == "smoke-29012400")
    # down: two runs finish, the older one failed
    cluster.run(
        "smoke-29012430",
        message=summary("Failed", passed=8, failed=1),
        exit_code=1,
        failed_reason="BackoffLimitExceeded",
        start="2026-11-21T18:30:00Z",
        end="2026-11-21T18:31:00Z",
    )
    cluster.run("smoke-29012460", message=summary(), start="2026-11-21T19:00:00Z", end="2026-11-21T19:01:00Z")
    with OperatorThread(kube, tmp_path):
        status = cluster.wait_status(lambda s: len(s.get("history") or []) == 3, message="runs not caught up")
        assert [h["name"] for h in status["history"]] == [
            "smoke-29012460",
            "smoke-29012430",
            "smoke-29012400",
        ]
        assert status["lastRun"]["name"] == "smoke-29012460"
        assert status["lastSuccessfulTime"] == "2026-11-21T19:01:00Z"
    with OperatorThread(kube, tmp_path):  # and a second restart adds nothing either
        wait_for(lambda: cluster.status().get("phase") == "Scheduled")
    assert len(cluster.status()["history"]) == 3
    assert len(cluster.events(reason="RunFailed")) == 1


def test_metrics_and_health(kube: Emulator, cluster: Cluster, tmp_path: pathlib.Path, free_ports) -> None:
    metrics_port, liveness_port = free_ports(2)
    with OperatorThread(kube, tmp_path, metrics_port=metrics_port, liveness_port=liveness_port):
        cluster.create_plan(make_plan(name="metered"))
        cluster.wait_status(lambda s: s.get("phase") == "Scheduled", name="metered")
        cluster.start_job("metered-29012345", cronjob="metered")
        cluster.finish_pod(
            "metered-29012345",
            message=summary("Failed", passed=4, failed=2, xfailed=2, xpassed=1),
            exit_code=1,
        )
        cluster.finish_job("metered-29012345", failed_reason="BackoffLimitExceeded")
        cluster.wait_status(lambda s: s.get("lastRun"), name="metered")
        text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
        assert 'tep_runs_total{namespace="qa",plan="metered",result="Failed",trigger="schedule"} 1.0' in text
        assert 'tep_last_run_tests{namespace="qa",outcome="failed",plan="metered"} 2.0' in text
        assert 'tep_last_run_tests{namespace="qa",outcome="xfailed",plan="metered"} 2.0' in text
        assert 'tep_last_run_tests{namespace="qa",outcome="xpassed",plan="metered"} 1.0' in text
        assert 'tep_run_duration_seconds_count{namespace="qa",plan="metered"} 1.0' in text
        health = urllib.request.urlopen(f"http://127.0.0.1:{liveness_port}/healthz", timeout=5)
        assert health.status == 200


def _by_verb(counts: dict[tuple[str, str], int]) -> dict[str, int]:
    verbs: dict[str, int] = {}
    for (verb, _), n in counts.items():
        verbs[verb] = verbs.get(verb, 0) + n
    return verbs


def _counted(metrics_port: int) -> dict[str, float]:
    """tep_api_requests_total by verb (all codes), as the operator's /metrics says."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    verbs: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "tep_api_requests_total":
                verbs[sample.labels["verb"]] = verbs.get(sample.labels["verb"], 0) + sample.value
    return verbs


def test_the_operator_counts_its_api_requests_as_the_server_served_them(
    kube: Emulator, cluster: Cluster, tmp_path: pathlib.Path, free_ports
) -> None:
    (metrics_port,) = free_ports(1)
    with OperatorThread(kube, tmp_path, metrics_port=metrics_port):
        served_before, counted_before = _by_verb(kube.request_counts()), _counted(metrics_port)
        cluster.create_plan(make_plan(name="counted"))  # the test's own create
        cluster.wait_status(lambda s: s.get("phase") == "Scheduled", name="counted")
        wait_for(lambda: cluster.events(reason="CronJobApplied"), message="no CronJobApplied Event")
        served, counted = _by_verb(kube.request_counts()), _counted(metrics_port)

    def delta(after: dict[str, Any], before: dict[str, Any], verb: str) -> float:
        return after.get(verb, 0) - before.get(verb, 0)

    # the CronJob's apply and the status write; the Event
    assert delta(counted, counted_before, "patch") == delta(served, served_before, "patch") == 2
    assert delta(counted, counted_before, "create") == delta(served, served_before, "create") - 1 == 1
