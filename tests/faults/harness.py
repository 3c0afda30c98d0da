"""The fault suite's parts: the operator as a real process that can be SIGKILLed, and an
estate of plans whose runs the test plays through as Kubernetes' controllers would.

`OperatorProcess` is `python -m tep_operator` against the emulator over HTTP (the same
entry point as the chart's pod). `Estate` plays the CronJob controller (a Job from the
CronJob's template), the Job controller and the kubelet (a pod that ends with the runner's
termination message, then the Job's condition), as tests/integration/harness.py does, and
remembers every run it finished, to check at the end that each is recorded exactly once.
"""

import dataclasses
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import kubernetes

from tep_operator import names
from tests.emulator import TEST_USER_AGENT, Emulator
from tests.integration.harness import Cluster, make_plan
from tests.messages import runner_message
from tests.operator_log import STOP_MARK, logged_errors

NAMESPACE = "faults"
STARTUP_SECONDS = 30
ROOT = pathlib.Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OperatorProcess:
    """`python -m tep_operator` watching NAMESPACE of the emulator; its log in `log_path`
    (appended to across restarts, so that one log tells the whole scenario)."""

    def __init__(self, kubeconfig: pathlib.Path, log_path: pathlib.Path, identity: str = "tep-operator-0",
                 peering: str = "") -> None:  # fmt: skip
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.identity = identity
        self.peering = peering
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.starts = 0
        self.kills = 0

    def start(self) -> "OperatorProcess":
        self.port = free_port()
        command = [sys.executable, "-m", "tep_operator", "--kubeconfig", str(self.kubeconfig),
                   "--namespace", NAMESPACE, "--liveness-port", str(self.port), "--metrics-port", "0",
                   "--resync-seconds", "5"]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("TEP_")}
        env["TEP_OPERATOR_POD_NAME"] = self.identity
        if self.peering:
            env["TEP_OPERATOR_PEERING"] = self.peering
        with self.log_path.open("ab") as log:
            log.write(f"===== start #{self.starts + 1} of {self.identity}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        self.starts += 1
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the operator exited ({self.proc.returncode}):\n{self.log()[-3000:]}")
            if self.healthy():
                return self
            time.sleep(0.1)
        raise AssertionError(f"the operator was not ready in {STARTUP_SECONDS} s:\n{self.log()[-3000:]}")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed or finished."""
        if self.alive():
            assert self.proc is not None
            self.kill_now()
            self.proc.wait(10)

    def kill_now(self) -> None:
        """SIGKILL from any thread (the emulator's, on a request), without waiting for it."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.kills += 1

    def ensure_running(self) -> bool:
        """Start it again if it died; True if it had to."""
        if self.alive():
            return False
        if self.proc is not None:
            self.proc.wait(10)
        self.start()
        return True

    def stop(self) -> None:
        if self.alive():
            assert self.proc is not None
            with self.log_path.open("ab") as log:
                log.write(f"{STOP_MARK}\n".encode())
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclasses.dataclass
class FinishedRun:
    plan: str
    job: str
    uid: str
    passed: int
    failed: int


class Estate:
    """`count` plans in NAMESPACE, and the runs played through them."""

    def __init__(self, emulator: Emulator, count: int = 20) -> None:
        self.emulator = emulator
        self.cluster = Cluster(emulator)
        self.cluster.custom.api_client.user_agent = TEST_USER_AGENT  # exempt from the faults
        self.plans = [f"plan-{i:02d}" for i in range(count)]
        self.finished: list[FinishedRun] = []
        self.requests: dict[str, list[str]] = {plan: [] for plan in self.plans}
        self.serial = 0
        emulator.create_namespace(NAMESPACE)
        for plan in self.plans:
            # a crontab that never comes: the test plays every scheduled run itself
            body = make_plan(plan, NAMESPACE, crontab="0 0 1 1 *", historyLimit=50)
            self.cluster.create_plan(body)

    def wait(self, check: Callable[[], Any], timeout: float, what: str,
             keep_alive: Callable[[], object] = lambda: None) -> Any:  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            keep_alive()
            try:
                found = check()
            except kubernetes.client.ApiException as exc:
                if exc.status < 500 and exc.status != 429:
                    raise
                found = None  # an injected fault: ask again
            if found:
                return found
            time.sleep(0.05)
        raise AssertionError(f"{what}: not within {timeout} s")

    def _finish(self, plan: str, job: str) -> None:
        """The Job controller and kubelet: the runner pod ends with its message, then the Job."""
        self.serial += 1
        passed, failed = self.serial % 7 + 1, self.serial % 3 == 0
        message = runner_message("Failed" if failed else "Passed", total=passed + failed,
                                 passed=passed, failed=int(failed))  # fmt: skip
        uid = self.cluster.job(job, NAMESPACE)["metadata"]["uid"]
        self.cluster.finish_pod(job, NAMESPACE, message=message, exit_code=int(failed))
        self.cluster.finish_job(job, NAMESPACE, failed_reason="BackoffLimitExceeded" if failed else None)
        self.finished.append(FinishedRun(plan, job, uid, passed, int(failed)))

    def scheduled_run(self, plan: str) -> str:
        """The CronJob controller starts a Job; it runs and ends."""
        job = f"{plan}-s{self.serial:04d}"
        self.cluster.start_job(job, names.cronjob_name(plan), NAMESPACE)
        self._finish(plan, job)
        return job

    def request_run(self, plan: str) -> str:
        """`tep run`: the annotation; a value per request, newer than the plan's last one."""
        self.serial += 1
        value = f"2026-12-01T00:{self.serial // 60 % 60:02d}:{self.serial % 60:02d}Z"
        self.requests[plan].append(value)
        self.cluster.request_run(value, plan, NAMESPACE)
        return value

    def run_requested(
        self, plan: str, value: str, operator: Callable[[], object], timeout: float = 60
    ) -> str:
        """Wait for the operator's Job of the request (restarting a killed operator), run it."""
        job = names.manual_job_name(plan, value)

        def created() -> bool:
            return any(j["metadata"]["name"] == job for j in self.cluster.jobs(NAMESPACE))

        self.wait(created, timeout, f"the Job of run request {value} of {plan}", keep_alive=operator)
        self._finish(plan, job)
        return job

    # The checks after a scenario

    def statuses(self) -> dict[str, dict[str, Any]]:
        items = self.cluster.custom.list_namespaced_custom_object(
            names.GROUP, names.VERSION, NAMESPACE, names.PLURAL, _preload_content=False
        )
        return {p["metadata"]["name"]: p.get("status") or {} for p in json.loads(items.data)["items"]}

    def all_recorded(self) -> bool:
        statuses = self.statuses()
        return all(
            any(h.get("name") == run.job for h in statuses[run.plan].get("history") or [])
            for run in self.finished
        ) and all(
            not values or statuses[plan].get("lastRunRequest") == values[-1]
            for plan, values in self.requests.items()
        )

    def problems(self) -> list[str]:
        """Everything that is not exactly right, after the operator caught up."""
        found: list[str] = []
        statuses = self.statuses()
        for run in self.finished:
            entries = [h for h in statuses[run.plan].get("history") or [] if h.get("name") == run.job]
            if len(entries) != 1:
                found.append(f"{run.job}: {len(entries)} history entries")
            elif (entries[0].get("passed"), entries[0].get("failed")) != (run.passed, run.failed):
                found.append(f"{run.job}: counts {entries[0]} != passed {run.passed} failed {run.failed}")
        recorded = {h.get("name") for s in statuses.values() for h in s.get("history") or []}
        unplayed = recorded - {run.job for run in self.finished}
        found += [f"{name}: in a history but never run" for name in sorted(unplayed)]
        jobs = self.cluster.jobs(NAMESPACE)
        by_name: dict[str, set[str]] = {}
        for job in jobs:
            by_name.setdefault(job["metadata"]["name"], set()).add(job["metadata"]["uid"])
        uids = {run.job: run.uid for run in self.finished}
        for name, job_uids in by_name.items():
            if name in uids and job_uids != {uids[name]}:
                found.append(f"{name}: re-created after it ran (run twice)")
            if name not in uids:
                found.append(f"{name}: a Job nobody asked for")
        for plan, values in self.requests.items():
            for value in values:
                if names.manual_job_name(plan, value) not in by_name:
                    found.append(f"{plan}: run request {value} lost")
        cronjobs = self.cluster.cronjobs(NAMESPACE)
        per_plan: dict[str, int] = {}
        for cronjob in cronjobs:
            plan = cronjob["metadata"]["labels"].get(names.LABEL_PLAN, "?")
            per_plan[plan] = per_plan.get(plan, 0) + 1
        for plan in self.plans:
            if per_plan.get(plan, 0) != 1:
                found.append(f"{plan}: {per_plan.get(plan, 0)} CronJobs")
        return found


def log_errors(text: str) -> list[tuple[int, str]]:
    return logged_errors(text)
