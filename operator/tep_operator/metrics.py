"""Prometheus metrics of test runs, served on /metrics."""

from collections.abc import Iterable, Mapping
from typing import Any

import prometheus_client
from prometheus_client import Counter, Gauge, Histogram

from tep_operator.runs import COUNTS

LABELS = ("namespace", "plan")

RUNS = Counter("tep_runs", "Finished test runs.", [*LABELS, "trigger", "result"])
LAST_RUN_TESTS = Gauge(
    "tep_last_run_tests", "Tests of the last finished run, by outcome.", [*LABELS, "outcome"]
)
RUN_DURATION = Histogram(
    "tep_run_duration_seconds",
    "Wall time of test runs.",
    LABELS,
    buckets=(5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200),
)
LAST_SUCCESS = Gauge("tep_last_success_timestamp_seconds", "When the plan last passed (Unix time).", LABELS)
LAST_RUN_IMBALANCE = Gauge(
    "tep_last_run_shard_imbalance",
    "The last sharded run's slowest shard time over its mean shard time (1 is even).",
    LABELS,
)
LAST_RUN_CPU = Gauge(
    "tep_last_run_cpu_utilization",
    "The last run's CPU seconds over its wall seconds x the CPU limit.",
    LABELS,
)


# Per-plan state, from the status on every reconcile (so also right after a restart); the
# chart's alerts fire and resolve on their transitions, not once per failed Job.
RESULTS = ("Passed", "Failed", "Error")
LAST_RUN_RESULT = Gauge(
    "tep_last_run_result",
    "1 for the result of the plan's newest finished run, 0 for the others.",
    [*LABELS, "result"],
)
CONSECUTIVE_FAILURES = Gauge(
    "tep_consecutive_failures", "Failed or errored runs in a row, up to the newest run.", LABELS
)
SCHEDULE_OVERDUE = Gauge(
    "tep_schedule_overdue", "1 while a due run has not started within startingDeadlineSeconds.", LABELS
)
API_REQUESTS = Counter(
    "tep_api_requests",
    "The operator's requests to the Kubernetes API, by verb and the status code answered "
    "(those of its client: kopf's own watches, and the listings that start them, are not counted).",
    ["verb", "code"],
)
NOTIFICATION_FAILURES = Counter(
    "tep_notification_failures", "Notifications that failed after every retry.", [*LABELS, "target", "kind"]
)


def observe_plan(
    namespace: str,
    plan: str,
    status: Mapping[str, Any],
    overdue: bool,
    targets: Iterable[tuple[str, str]] = (),
) -> None:
    """The per-plan gauges from the plan's status. Each (target, kind) gets its failure
    counter at 0 now: `increase()` sees no rise in a series whose first sample is 1."""
    for target, kind in targets:
        NOTIFICATION_FAILURES.labels(namespace, plan, target, kind)
    result = (status.get("lastRun") or {}).get("result")
    if result in RESULTS:
        for each in RESULTS:
            LAST_RUN_RESULT.labels(namespace, plan, each).set(1 if each == result else 0)
    CONSECUTIVE_FAILURES.labels(namespace, plan).set(int(status.get("consecutiveFailures") or 0))
    SCHEDULE_OVERDUE.labels(namespace, plan).set(1 if overdue else 0)


def notification_failed(namespace: str, plan: str, target: str, kind: str) -> None:
    NOTIFICATION_FAILURES.labels(namespace, plan, target, kind).inc()


def observe_run(namespace: str, plan: str, run: Mapping[str, Any], completed_at: float | None) -> None:
    """Count a run once, when it is first recorded."""
    RUNS.labels(namespace, plan, run.get("trigger", "schedule"), run["result"]).inc()
    for outcome in COUNTS:
        LAST_RUN_TESTS.labels(namespace, plan, outcome).set(run.get(outcome, 0))
    if run.get("durationSeconds") is not None:
        RUN_DURATION.labels(namespace, plan).observe(run["durationSeconds"])
    if run["result"] == "Passed" and completed_at is not None:
        LAST_SUCCESS.labels(namespace, plan).set(completed_at)
    if run.get("imbalance") is not None:
        LAST_RUN_IMBALANCE.labels(namespace, plan).set(run["imbalance"])
    if run.get("cpuUtilization") is not None:
        LAST_RUN_CPU.labels(namespace, plan).set(run["cpuUtilization"])


def forget_plan(namespace: str, plan: str) -> None:
    """Drop a deleted plan's series, so dashboards do not show it forever."""
    for metric in (
        LAST_RUN_TESTS,
        RUN_DURATION,
        LAST_SUCCESS,
        LAST_RUN_IMBALANCE,
        LAST_RUN_CPU,
        RUNS,
        LAST_RUN_RESULT,
        CONSECUTIVE_FAILURES,
        SCHEDULE_OVERDUE,
        NOTIFICATION_FAILURES,
    ):
        for labels in list(metric._metrics):  # prometheus-client has no public "remove matching"
            if labels[:2] == (namespace, plan):
                metric.remove(*labels)


def serve(port: int) -> Any:
    """Start /metrics on `port`; returns the server, which `shutdown()` stops."""
    server, _thread = prometheus_client.start_http_server(port)
    return server


def api_answered(verb: str, code: int) -> None:
    API_REQUESTS.labels(verb, str(code)).inc()
