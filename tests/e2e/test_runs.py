"""Real runs on a real cluster: the runner image executes the example suites.

The operator runs as a local process (conftest.py) with TEP_E2E_RUNNER_IMAGE as its runner
image (imagePullPolicy IfNotPresent: load it into the nodes first, e.g. `kind load
docker-image`). A run is requested with the real CLI, `tep run PLAN -n NS --wait`, which exits
with the runner's exit code. The plans are the examples' own, with `enabled: false`, so only
the requested run happens. The namespace enforces the `restricted` Pod Security Standard: the
runner pod must be admitted under it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tep_operator.cronjob import TERMINATION_GRACE_SECONDS
from tep_operator.runs import COUNTS
from tests.e2e.conftest import reports_storage_class

KUBECONFIG = os.environ.get("TEP_E2E_KUBECONFIG", "")
RUNNER_IMAGE = os.environ.get("TEP_E2E_RUNNER_IMAGE", "")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not KUBECONFIG,
        reason="TEP_E2E_KUBECONFIG is not set: the run end-to-end tests need a disposable cluster "
        "(kind, k3d, minikube); set TEP_E2E_KUBECONFIG and TEP_E2E_RUNNER_IMAGE",
    ),
    pytest.mark.skipif(
        bool(KUBECONFIG) and not RUNNER_IMAGE,
        reason="TEP_E2E_RUNNER_IMAGE is not set: name the runner image already loaded into the "
        "cluster's nodes (e.g. tep-runner:dev); the runs use imagePullPolicy IfNotPresent",
    ),
    pytest.mark.timeout(900),
]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RUN_TIMEOUT = 300  # seconds `tep run --wait` waits: a local image, pods start in seconds
SETTLE = 120
REQUESTED_AT = "tep.dev/run-requested-at"


# -- helpers ----------------------------------------------------------------------------------


def tep_cli() -> list[str]:
    """The `tep` console script of this environment, else its entry point through this Python."""
    script = Path(sys.executable).parent / "tep"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    found = shutil.which("tep")
    if found:
        return [found]
    return [
        sys.executable,
        "-c",
        "import sys; from tep_operator.cli import main; sys.exit(main(sys.argv[1:]))",
    ]


def tep_run(namespace: str, plan: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        *tep_cli(),
        "run",
        plan,
        "-n",
        namespace,
        "--wait",
        "--timeout",
        str(RUN_TIMEOUT),
        "--kubeconfig",
        KUBECONFIG,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT + 120)


def output_of(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit code {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"


def prepare_namespace(kubectl, namespace: str, configmap: str, tests: Path) -> None:
    """Restricted Pod Security, the tests as a ConfigMap, and the reports claim."""
    kubectl(
        "label",
        "namespace",
        namespace,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/enforce-version=latest",
        "--overwrite",
    )
    manifest = kubectl(
        "create",
        "configmap",
        configmap,
        "-n",
        namespace,
        f"--from-file={tests}",
        "--dry-run=client",
        "-o",
        "yaml",
    )
    kubectl("apply", "-n", namespace, "-f", "-", input=manifest)
    configmap_keys = set(kubectl.json("get", "configmap", configmap, "-n", namespace)["data"])
    assert {p.name for p in tests.glob("*.py")} <= configmap_keys, configmap_keys
    # ReadWriteOnce: what kind, k3d and minikube provision; the default StorageClass, else a pre-made volume.
    size = {"requests": {"storage": "100Mi"}}
    claim: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": size}
    storage_class = reports_storage_class(
        kubectl.json("get", "storageclass")["items"], kubectl.json("get", "pv")["items"]
    )
    if storage_class is not None:
        claim["storageClassName"] = storage_class
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "tep-reports", "namespace": namespace},
            "spec": claim,
        }
    )


def example_plan(example: str, namespace: str) -> dict[str, Any]:
    plan = yaml.safe_load((EXAMPLES / example / "plan.yaml").read_text())
    plan["metadata"]["namespace"] = namespace
    plan["spec"]["enabled"] = False  # only the requested run; the crontab stays as written
    return plan


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    found = [c for c in status.get("conditions") or [] if c.get("type") == type_]
    assert found, f"no condition {type_} in {status.get('conditions')}"
    return found[0]


def job_of(proc: subprocess.CompletedProcess[str]) -> str:
    """`tep: requested a run of <ns>/<plan> (Job <name>)` -> the Job's name."""
    match = re.search(r"\(Job ([a-z0-9.-]+)\)", proc.stdout)
    assert match, f"tep run did not name the Job:\n{output_of(proc)}"
    return match.group(1)


def runner_pods(kubectl, namespace: str, plan: str, job: str) -> list[dict[str, Any]]:
    pods = kubectl.items("pods", namespace, "-l", f"tep.dev/plan={plan}")
    return [
        p
        for p in pods
        if any(
            o.get("kind") == "Job" and o.get("name") == job for o in p["metadata"].get("ownerReferences", [])
        )
    ]


def runner_terminated(pod: dict[str, Any]) -> dict[str, Any]:
    statuses = {s["name"]: s for s in pod.get("status", {}).get("containerStatuses", [])}
    assert "runner" in statuses, f"no runner container status in {pod['metadata']['name']}"
    terminated = statuses["runner"].get("state", {}).get("terminated")
    assert terminated, f"runner container of {pod['metadata']['name']} not terminated: {statuses['runner']}"
    return terminated


def assert_counts_from_message(last: dict[str, Any], pod: dict[str, Any]) -> dict[str, Any]:
    """The run's counts in the status are those of the pod's termination message (the runner's
    summary); the parsed message."""
    message = json.loads(runner_terminated(pod)["message"])
    for key in COUNTS:
        assert last.get(key, 0) == message.get(key, 0), (
            f"{key}: status {last} vs termination message {message}"
        )
    assert last["result"] == message["result"], (last, message)
    return message


def apply_suspended(kubectl, wait_until, plan: dict[str, Any]) -> None:
    """Apply a plan with `enabled: false` and wait until the operator has taken it (phase Suspended)."""
    name, ns = plan["metadata"]["name"], plan["metadata"]["namespace"]
    kubectl.apply(plan)
    wait_until(
        lambda: (kubectl.get("testplan", name, ns).get("status") or {}).get("phase") == "Suspended",
        SETTLE,
        "phase Suspended (enabled: false)",
    )


def settled_after_run(kubectl, namespace: str, plan: str, job: str):
    """A poll function: the plan once its last run is `job` and the phase is back to Suspended."""

    def check() -> dict[str, Any] | None:
        body = kubectl.get("testplan", plan, namespace)
        status = body.get("status") or {}
        last = status.get("lastRun") or {}
        return body if last.get("name") == job and status.get("phase") == "Suspended" else None

    return check


# -- tests ------------------------------------------------------------------------------------


def test_smoke_run_passes(kubectl, wait_until, holds_for, tep_namespace, tep_operator):
    ns, name = tep_namespace, "smoke"
    prepare_namespace(kubectl, ns, "smoke-tests", EXAMPLES / "smoke" / "tests")
    plan = example_plan("smoke", ns)
    # The example requests a whole CPU; a small test node (kind on a 2-CPU CI runner, its
    # control plane requesting ~1) may not have it. The limit, hence the worker count, stays.
    plan["spec"]["resources"]["requests"]["cpu"] = "100m"
    apply_suspended(kubectl, wait_until, plan)

    proc = tep_run(ns, name)
    assert proc.returncode == 0, f"tep run --wait should exit 0 (every test passed):\n{output_of(proc)}"
    job = job_of(proc)

    # -- the plan's status ------------------------------------------------------------------------
    body = wait_until(settled_after_run(kubectl, ns, name, job), SETTLE, "lastRun recorded, phase Suspended")
    request = body["metadata"]["annotations"][REQUESTED_AT]
    status = body["status"]
    last = status["lastRun"]
    assert last["result"] == "Passed", last
    assert last["trigger"] == "manual"
    assert (last["total"], last["passed"], last["failed"]) == (9, 9, 0), last
    assert last.get("errors", 0) == 0
    assert last["workers"] >= 1
    suffix = job.rsplit("-", 1)[-1]
    assert re.fullmatch(
        rf"{re.escape(ns)}/smoke/\d{{8}}T\d{{6}}Z-{suffix}/report\.html", last["reportPath"]
    ), last["reportPath"]
    assert status["lastRunRequest"] == request
    assert status["history"][0]["name"] == last["name"] == job
    assert condition(status, "LastRunSucceeded")["status"] == "True"
    succeeded = wait_until(
        lambda: kubectl.events(ns, name, reason="RunSucceeded", type="Normal"), SETTLE, "Event RunSucceeded"
    )
    assert any(job in e.get("message", "") for e in succeeded), succeeded

    # -- the Job and its pod --------------------------------------------------------------------
    job_obj = kubectl.get("job", job, ns)
    assert job_obj is not None, f"Job {job} is gone"
    assert job_obj["metadata"]["labels"]["tep.dev/trigger"] == "manual"
    assert job_obj["metadata"]["labels"]["tep.dev/plan"] == name
    assert job_obj["metadata"]["annotations"][REQUESTED_AT] == request
    assert job_obj["status"].get("succeeded") == 1, job_obj["status"]
    pods = runner_pods(kubectl, ns, name, job)
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    pod = pods[0]
    security = pod["spec"]["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security.get("runAsUser", 0) != 0
    assert pod["spec"]["automountServiceAccountToken"] is False
    terminated = runner_terminated(pod)
    assert terminated["exitCode"] == 0, terminated
    summary = assert_counts_from_message(last, pod)  # the termination message (docs/design.md section 4)
    assert summary["result"] == "Passed" and summary["total"] == 9, summary

    # -- the same request value again: never a second run ------------------------------------------
    # (with another annotation changed at once, so the plan really is updated and handled)
    kubectl(
        "annotate",
        "testplan",
        name,
        "-n",
        ns,
        f"{REQUESTED_AT}={request}",
        "tep.dev/e2e-poke=1",
        "--overwrite",
    )

    def still_one_manual_run() -> bool:
        jobs = kubectl.items("jobs", ns, "-l", f"tep.dev/plan={name},tep.dev/trigger=manual")
        status = kubectl.get("testplan", name, ns)["status"]
        return [j["metadata"]["name"] for j in jobs] == [job] and status["lastRunRequest"] == request

    holds_for(still_one_manual_run, 10, f"one manual Job ({job}) after re-sending the same request")


def test_mixed_run_fails(kubectl, wait_until, tep_namespace, tep_operator):
    ns, name = tep_namespace, "mixed"
    prepare_namespace(kubectl, ns, "mixed-tests", EXAMPLES / "mixed" / "tests")
    apply_suspended(kubectl, wait_until, example_plan("mixed", ns))

    proc = tep_run(ns, name)
    assert proc.returncode == 1, f"tep run --wait should exit 1 (a test failed):\n{output_of(proc)}"
    job = job_of(proc)

    body = wait_until(settled_after_run(kubectl, ns, name, job), SETTLE, "lastRun recorded, phase Suspended")
    status = body["status"]
    last = status["lastRun"]
    assert last["result"] == "Failed", last
    assert last["trigger"] == "manual"
    assert last["failed"] >= 1, last
    assert last["failedTests"], last
    assert any("test_wrong_total" in test for test in last["failedTests"]), last["failedTests"]
    assert last["passed"] >= 1 and last.get("skipped", 0) >= 1, last
    assert status["history"][0]["name"] == job
    assert condition(status, "LastRunSucceeded")["status"] == "False"
    failed = wait_until(
        lambda: kubectl.events(ns, name, reason="RunFailed", type="Warning"),
        SETTLE,
        "Warning Event RunFailed",
    )
    assert any(job in e.get("message", "") for e in failed), failed

    pods = runner_pods(kubectl, ns, name, job)
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    assert runner_terminated(pods[0])["exitCode"] == 1, "the runner exits 1 when a test failed"
    # a failed run's Job ends Failed (BackoffLimitExceeded): still, the counts are the pod's
    summary = assert_counts_from_message(last, pods[0])
    assert summary["failedTests"] == last["failedTests"], (summary, last)


# -- a test that hangs past the deadline ------------------------------------------------------

# From the pod's start (the kubelet's acknowledgement, before its containers are created): long enough for a
# slow node to start the container (10-30 s) and Python, pytest and 2 xdist workers, so that the quick tests
# have passed when the kubelet's SIGTERM comes.
HANG_DEADLINE = 90
HANGING_TEST = "test_deadline.py::test_hang"
HANGING_SUITE = """\
import time


def test_quick_a():
    pass


def test_quick_b():
    pass


def test_hang():
    time.sleep(600)
"""
# Run in a pod that mounts the reports claim read-only: what the run left on the volume, as JSON.
READ_RUN_FOLDER = """\
import html, json, pathlib, re, sys
import xml.etree.ElementTree as ET

run = pathlib.Path("/reports") / sys.argv[1]
out = {"files": sorted(p.name for p in run.iterdir())}
out["summary"] = json.loads((run / "summary.json").read_text())
out["junit"] = {
    f"{c.get('file')}::{c.get('name')}": "failed" if c.find("failure") is not None else "passed"
    for c in ET.parse(run / "junit.xml").iter("testcase") if c.get("name")
}
blob = re.search(r'data-jsonblob="([^"]*)"', (run / "report.html").read_text()).group(1)
out["html"] = {k: v[-1]["result"] for k, v in json.loads(html.unescape(blob))["tests"].items()}
print(json.dumps(out))
"""


def read_run_folder(kubectl, wait_until, namespace: str, folder: str, node: str) -> dict[str, Any]:
    """The run folder's files, read by a short-lived pod (restricted, read-only) mounting the claim.

    No DNS and no Service are needed: the pod's log carries the answer. It runs the runner image, which is
    on the nodes already and has Python, on the runner pod's node: a ReadWriteOnce claim, or a class-less
    hostPath volume made by hand, may hold the files on that node only.
    """
    name = "read-reports"
    restricted = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {
                                    "matchFields": [
                                        {"key": "metadata.name", "operator": "In", "values": [node]}
                                    ]
                                }
                            ]
                        }
                    }
                },
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 65532,
                    "runAsGroup": 65532,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [
                    {
                        "name": "read",
                        "image": RUNNER_IMAGE,
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["python", "-c", READ_RUN_FOLDER, folder],
                        "securityContext": restricted,
                        "volumeMounts": [{"name": "reports", "mountPath": "/reports", "readOnly": True}],
                    }
                ],
                "volumes": [
                    {
                        "name": "reports",
                        "persistentVolumeClaim": {"claimName": "tep-reports", "readOnly": True},
                    }
                ],
            },
        }
    )

    def finished() -> str | None:
        phase = (kubectl.get("pod", name, namespace) or {}).get("status", {}).get("phase")
        return phase if phase in ("Succeeded", "Failed") else None

    phase = wait_until(finished, SETTLE, f"pod {name} reading {folder}")
    log = kubectl("logs", name, "-n", namespace)
    assert phase == "Succeeded", f"reading the run folder failed:\n{log}"
    return json.loads(log.strip().splitlines()[-1])


def test_a_test_hanging_past_the_deadline_is_named_and_every_report_written(
    kubectl, wait_until, tep_namespace, tep_operator, tmp_path
):
    ns, name = tep_namespace, "hang"
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_deadline.py").write_text(HANGING_SUITE)
    prepare_namespace(kubectl, ns, "hang-tests", tests)
    apply_suspended(
        kubectl,
        wait_until,
        {
            "apiVersion": "tep.dev/v1alpha1",
            "kind": "TestPlan",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "crontab": "@daily",
                "enabled": False,
                "activeDeadlineSeconds": HANG_DEADLINE,
                "source": {"configMap": {"name": "hang-tests"}},
                "pytest": {"workers": 2},
            },
        },
    )

    proc = tep_run(ns, name)
    assert proc.returncode == 2, f"tep run --wait should exit 2 (the run was stopped):\n{output_of(proc)}"
    job = job_of(proc)

    # -- the plan's status: the counts and names the runner reported, the deadline as the reason --------
    body = wait_until(settled_after_run(kubectl, ns, name, job), SETTLE, "lastRun recorded, phase Suspended")
    last = body["status"]["lastRun"]
    assert last["result"] == "Error", last
    # The kubelet's SIGTERM at the pod's deadline (the operator adds "DeadlineExceeded: spec.…"), or, if the
    # kubelet acts a moment late, the runner's own timer: either way the reason names the deadline.
    assert f"activeDeadlineSeconds ({HANG_DEADLINE} s) exceeded" in last["reason"], last
    assert f"stopped while running {HANGING_TEST}" in last["reason"], last
    assert (last["total"], last["passed"], last["failed"]) == (3, 2, 1), last
    assert last["failedTests"] == [HANGING_TEST], last
    assert last["timedOut"] == [HANGING_TEST], last

    # -- the pod: stopped at its deadline, not after the 600 s the test sleeps ---------------------------
    pods = runner_pods(kubectl, ns, name, job)
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    pod = pods[0]
    assert pod["spec"]["activeDeadlineSeconds"] == HANG_DEADLINE
    assert pod["spec"]["terminationGracePeriodSeconds"] == TERMINATION_GRACE_SECONDS
    terminated = runner_terminated(pod)
    began = dt.datetime.fromisoformat(pod["status"]["startTime"].replace("Z", "+00:00"))
    ended = dt.datetime.fromisoformat(terminated["finishedAt"].replace("Z", "+00:00"))
    assert (ended - began).total_seconds() < HANG_DEADLINE + TERMINATION_GRACE_SECONDS, (began, ended)
    assert terminated["exitCode"] == 2, terminated  # the runner's own exit (Error), not a kill
    message = json.loads(terminated["message"])
    assert message["timedOut"] == [HANGING_TEST] and message["failedTests"] == [HANGING_TEST], message

    # -- the volume tells the same story ---------------------------------------------------------------
    folder = last["reportPath"].rsplit("/", 1)[0]
    found = read_run_folder(kubectl, wait_until, ns, folder, pod["spec"]["nodeName"])
    assert {"summary.json", "junit.xml", "report.html", "pytest.log"} <= set(found["files"]), found["files"]
    summary = found["summary"]
    assert (summary["result"], summary["total"], summary["passed"], summary["failed"]) == ("Error", 3, 2, 1)
    assert summary["failedTests"] == [HANGING_TEST] and summary["timedOut"] == [HANGING_TEST], summary
    assert summary["reason"] in last["reason"], (summary["reason"], last["reason"])
    quick = ["test_deadline.py::test_quick_a", "test_deadline.py::test_quick_b"]
    assert found["junit"] == {quick[0]: "passed", quick[1]: "passed", HANGING_TEST: "failed"}, found["junit"]
    assert found["html"] == {quick[0]: "Passed", quick[1]: "Passed", HANGING_TEST: "Failed"}, found["html"]
