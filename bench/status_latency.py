"""Benchmark: from a runner pod's termination to the TestPlan status showing that run.

    python bench/status_latency.py [--runs 200] [--plans 20] [--history-limit 5] [--poll 0.01]

The operator runs as a separate process (`python -m tep_operator`, as in
bench/reconcile.py) against the in-process emulator (tests/emulator.py). The emulator has
no CronJob controller, Job controller or kubelet; this script plays them, one run at a
time (never two runs in flight), round-robin over --plans plans, so every plan gets
runs/plans runs and, with --history-limit below that, its history is capped on the way.

One run:
 1. the CronJob controller: a Job from the plan's CronJob template, `status.active: 1`;
    the kubelet: its runner pod, Running (owned by the Job);
 2. wait until the plan shows `phase: Running` (the operator has seen the run start;
    that time is reported too, as "start");
 3. termination, the timed part. The clock starts right before the pod's
    `state.terminated` (with the runner's JSON summary as its message) is written; the
    Job's Complete condition is written immediately after, as the Job controller does
    within milliseconds in a real cluster. The clock stops when a GET of the plan, every
    --poll seconds, shows `status.lastRun.name == <the Job's name>`;
 4. the CronJob controller's clean-up: only the newest 3 Jobs of a plan are kept (its
    successfulJobsHistoryLimit), older ones are deleted with their pods (untimed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import pathlib
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))  # the repository's root

import kubernetes

from bench.reconcile import OperatorProcess, plan_body
from tep_operator import names
from tep_operator.cronjob import JOBS_HISTORY_LIMIT
from tests.emulator import start_emulator
from tests.integration.harness import Cluster
from tests.messages import runner_message as summary

TARGET_P95 = 1.0  # seconds
NAMESPACE = "bench"


def iso_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def poll_until(check: Callable[[], Any], interval: float, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not seen within {timeout} s")
        time.sleep(interval)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


class Runs:
    """The controllers and the kubelet, for one plan's runs, on top of the harness's Cluster."""

    def __init__(self, cluster: Cluster, poll: float, timeout: float) -> None:
        self.cluster = cluster
        self.poll = poll
        self.timeout = timeout
        self.kept: dict[str, list[str]] = {}  # plan -> its Jobs, oldest first

    def status(self, plan: str) -> dict[str, Any]:
        return self.cluster.status(plan, NAMESPACE)

    def start(self, plan: str, job: str) -> tuple[str, float]:
        """Job and pod started; the pod's name and the seconds until the plan said Running."""
        started = time.perf_counter()
        created = self.cluster.start_job(
            job, cronjob=names.cronjob_name(plan), namespace=NAMESPACE, start=iso_now()
        )
        uid = self.cluster.batch.read_namespaced_job(job, NAMESPACE).metadata.uid
        template = created["spec"]["template"]["metadata"]
        pod = f"{job}-0-pod"
        self.cluster.core.create_namespaced_pod(NAMESPACE, {
            "metadata": {
                "name": pod,
                "labels": {**(template.get("labels") or {}), names.LABEL_JOB_NAME: job},
                "annotations": {**(template.get("annotations") or {}),
                                "batch.kubernetes.io/job-completion-index": "0"},
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job, "uid": uid,
                                     "controller": True}],
            },
            "spec": {"containers": [{"name": "runner", "image": "tep-runner:bench"}],
                     "restartPolicy": "Never"},
        })  # fmt: skip
        self.cluster.core.patch_namespaced_pod_status(pod, NAMESPACE, {"status": {"phase": "Running"}})
        poll_until(
            lambda: self.status(plan).get("phase") == "Running", self.poll, self.timeout, f"{job} Running"
        )
        return pod, time.perf_counter() - started

    def finish(self, plan: str, job: str, pod: str) -> float:
        """The timed part: pod terminated, Job Complete, until lastRun is this Job."""
        terminated = {"exitCode": 0, "reason": "Completed", "message": summary("Passed")}
        pod_status = {"status": {
            "phase": "Succeeded",
            "containerStatuses": [{"name": "runner", "state": {"terminated": terminated}, "ready": False,
                                   "restartCount": 0, "image": "tep-runner:bench", "imageID": ""}],
        }}  # fmt: skip
        end = iso_now()
        job_status = {"status": {
            "active": 0, "succeeded": 1, "completionTime": end,
            "conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": end}],
        }}  # fmt: skip
        started = time.perf_counter()
        self.cluster.core.patch_namespaced_pod_status(pod, NAMESPACE, pod_status)
        self.cluster.batch.patch_namespaced_job_status(job, NAMESPACE, job_status)
        poll_until(
            lambda: (self.status(plan).get("lastRun") or {}).get("name") == job,
            self.poll,
            self.timeout,
            f"{job} in status.lastRun",
        )
        return time.perf_counter() - started

    def prune(self, plan: str, job: str) -> None:
        """The CronJob controller keeps its newest Jobs; deleting a Job deletes its pods (GC)."""
        jobs = self.kept.setdefault(plan, [])
        jobs.append(job)
        while len(jobs) > JOBS_HISTORY_LIMIT:
            self.cluster.batch.delete_namespaced_job(jobs.pop(0), NAMESPACE, propagation_policy="Background")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=200, help="runs to time (default 200)")
    parser.add_argument("--plans", type=int, default=20, help="plans the runs go round (default 20)")
    parser.add_argument(
        "--history-limit", type=int, default=5, help="the plans' spec.historyLimit (default 5)"
    )
    parser.add_argument(
        "--poll", type=float, default=0.01, help="seconds between GETs of the plan (default 0.01)"
    )
    parser.add_argument("--timeout", type=float, default=30, help="seconds to wait for one status change")
    parser.add_argument("--keep-logs", action="store_true", help="keep the operator's log and print where")
    args = parser.parse_args(argv)

    workdir = pathlib.Path(tempfile.mkdtemp(prefix="tep-bench-"))
    emulator = start_emulator(namespaces=(NAMESPACE,))
    operator = OperatorProcess(
        emulator.kubeconfig(workdir / "kubeconfig"), NAMESPACE, workdir / "operator.log"
    )
    try:
        cluster = Cluster(emulator)
        plans = []
        for i in range(args.plans):
            body = plan_body(i, NAMESPACE)
            body["spec"]["historyLimit"] = args.history_limit
            plans.append(cluster.create_plan(body)["metadata"]["name"])
        operator.start()
        runs = Runs(cluster, args.poll, args.timeout)
        for plan in plans:
            poll_until(lambda plan=plan: runs.status(plan).get("phase") == "Scheduled", 0.05, 60, plan)

        print(
            f"tep-operator status latency benchmark: {args.runs} runs, one at a time, "
            f"over {len(plans)} plans "
            f"(historyLimit {args.history_limit}), poll every {1000 * args.poll:.0f} ms, operator in its own "
            "process, API: emulator"
        )
        finished: list[float] = []
        starts: list[float] = []
        for i in range(args.runs):
            plan = plans[i % len(plans)]
            job = f"{names.cronjob_name(plan)}-{i:05d}"
            pod, start_seconds = runs.start(plan, job)
            starts.append(start_seconds)
            finished.append(runs.finish(plan, job, pod))
            runs.prune(plan, job)

        # Every plan's history is capped, newest first, and lastRun is its newest run.
        for index, plan in enumerate(plans):
            status = runs.status(plan)
            history = status.get("history") or []
            expected = min(args.history_limit, len(range(index, args.runs, len(plans))))
            if len(history) != expected or (history and history[0]["name"] != status["lastRun"]["name"]):
                raise RuntimeError(f"{plan}: history of {len(history)} (expected {expected}): {history!r}")

        _, peak = operator.rss_mb()
        ms = [1000 * s for s in finished]
        p95 = percentile(finished, 0.95)
        print(
            f"termination -> status.lastRun: median {statistics.median(ms):6.1f} ms, "
            f"p95 {1000 * p95:6.1f} ms, "
            f"max {max(ms):6.1f} ms, mean {statistics.fmean(ms):6.1f} ms  (n={len(ms)})"
        )
        start_ms = [1000 * s for s in starts]
        print(
            f"job start   -> phase Running : median {statistics.median(start_ms):6.1f} ms, "
            f"p95 {1000 * percentile(starts, 0.95):6.1f} ms  (includes the writes of the Job and its pod)"
        )
        print(f"histories capped at {args.history_limit}: checked; operator peak RSS {peak:.1f} MB")
        ok = p95 <= TARGET_P95
        print(f"target: p95 <= {TARGET_P95:.1f} s: {1000 * p95:.1f} ms  {'PASS' if ok else 'MISS'}")
        return 0 if ok else 1
    except (RuntimeError, kubernetes.client.ApiException) as exc:
        print(f"failed: {exc}\noperator log (tail):\n{operator.log_tail()}", file=sys.stderr)
        return 2
    finally:
        operator.stop()
        emulator.stop()
        if args.keep_logs:
            print(f"operator log: {workdir / 'operator.log'}")
        else:
            shutil.rmtree(workdir)


if __name__ == "__main__":
    sys.exit(main())
