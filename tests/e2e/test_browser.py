"""The chart's reports server on a real cluster: after a real run, its page and its report are served.

Installs the chart (operator and reports server) in a fresh namespace that enforces the `restricted`
Pod Security Standard, runs the smoke example once with `tep run --wait`, then reaches the reports
server through `kubectl port-forward` to its Service (no DNS or Ingress needed) and reads the plan's
page, the API and the run's report.html. Storage: the cluster's default StorageClass when it has one,
else a pre-made PersistentVolume without a class (reports.storageClassName "-").

Needs TEP_E2E_KUBECONFIG, TEP_E2E_OPERATOR_IMAGE and TEP_E2E_RUNNER_IMAGE (loaded into the nodes);
without TEP_E2E_KUBECONFIG, importing test_helm skips this module too.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.e2e import test_helm
from tests.e2e.conftest import reports_storage_class
from tests.e2e.test_helm import (
    CHART,
    KUBECONFIG,
    REPO,
    Cluster,
    adopt_existing_crd,
    required_env,
    split_image,
    wait_for,
)
from tests.e2e.test_runs import job_of, output_of, tep_cli

# test_helm's fixtures: a Cluster (helm, kubectl), and a fresh namespace whose release is uninstalled after.
cluster = test_helm.cluster
namespace = test_helm.namespace

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


def storage_values(cluster: Cluster) -> dict[str, str]:
    """Where the reports claim can bind: the default StorageClass, else a pre-made PV without a class."""
    classes = cluster.kubectl_json("get", "storageclass")["items"]
    volumes = cluster.kubectl_json("get", "pv")["items"]
    return {} if reports_storage_class(classes, volumes) is None else {"reports.storageClassName": "-"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def test_reports_server_serves_the_run(cluster: Cluster, namespace: str, tmp_path: Path):
    release = namespace
    fullname = f"{release}-tep-operator"
    operator_repo, operator_tag = split_image(required_env("TEP_E2E_OPERATOR_IMAGE"))
    runner_repo, runner_tag = split_image(required_env("TEP_E2E_RUNNER_IMAGE"))

    def diag() -> str:
        return cluster.diagnostics(namespace)

    cluster.run(
        "kubectl",
        "label",
        "namespace",
        namespace,
        "pod-security.kubernetes.io/enforce=restricted",
        "--overwrite",
    )
    adopt_existing_crd(cluster, release, namespace)
    values = {
        "image.repository": operator_repo,
        "image.tag": operator_tag,
        "runner.image.repository": runner_repo,
        "runner.image.tag": runner_tag,
        "watchNamespaces": f"{{{namespace}}}",
        "reports.accessModes": "{ReadWriteOnce}",  # what single-node test clusters provision
        "reports.size": "100Mi",
        "runner.resources.requests.cpu": "100m",
        **storage_values(cluster),
    }
    sets = [arg for key, value in values.items() for arg in ("--set", f"{key}={value}")]
    cluster.run("helm", "install", release, str(CHART), "-n", namespace, *sets)
    for deployment in (fullname, f"{fullname}-reports"):
        proc = cluster.run(
            "kubectl", "rollout", "status", f"deployment/{deployment}", "-n", namespace, "--timeout=180s",
            check=False, timeout=240,
        )  # fmt: skip
        assert proc.returncode == 0, f"{deployment} did not become Available:\n{proc.stderr}\n{diag()}"

    cluster.run(
        "kubectl", "create", "configmap", "smoke-tests", "-n", namespace,
        f"--from-file={REPO / 'examples' / 'smoke' / 'tests'}",
    )  # fmt: skip
    plan = {
        "apiVersion": "tep.dev/v1alpha1",
        "kind": "TestPlan",
        "metadata": {"name": "smoke", "namespace": namespace},
        "spec": {"crontab": "0 0 1 1 *", "enabled": False, "source": {"configMap": {"name": "smoke-tests"}}},
    }
    cluster.run("kubectl", "apply", "-f", "-", stdin=json.dumps(plan))
    wait_for(
        lambda: (
            (cluster.kubectl_json("get", "testplan", "smoke", "-n", namespace).get("status") or {}).get(
                "phase"
            )
            == "Suspended"
        ),
        120,
        "TestPlan smoke to reach phase Suspended",
        diag,
    )
    command = [*tep_cli(), "run", "smoke", "-n", namespace, "--wait", "--timeout", "300"]
    run = subprocess.run([*command, "--kubeconfig", KUBECONFIG], capture_output=True, text=True, timeout=420)
    assert run.returncode == 0, f"{output_of(run)}\n{diag()}"
    job = job_of(run)
    last = cluster.kubectl_json("get", "testplan", "smoke", "-n", namespace)["status"]["lastRun"]
    assert last["name"] == job and last["result"] == "Passed", last
    report_path = last["reportPath"]  # <namespace>/smoke/<run id>/report.html
    run_id = report_path.split("/")[2]

    port = free_port()
    forward = subprocess.Popen(
        [cluster.kubectl, "--kubeconfig", KUBECONFIG, "-n", namespace, "port-forward",
         f"svc/{fullname}-reports", f"{port}:80"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if fetch(f"{base}/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert forward.poll() is None and time.monotonic() < deadline, "port-forward did not come up"
            time.sleep(1)

        # The run shows (a new run within 5 s of its history being written: it was written before).
        def api() -> dict:
            status, _, body = fetch(f"{base}/api/plans/{namespace}/smoke")
            return json.loads(body) if status == 200 else {}

        def newest_run() -> str:
            return (api().get("runs") or [{}])[0].get("runId", "")

        # (60 s: a volume shared over the network may show a new file to another node's reader late.)
        wait_for(lambda: newest_run() == run_id, 60, "the run in the API", diag)
        newest = api()["runs"][0]
        assert (newest["result"], newest["total"], newest["passed"], newest["trigger"]) == (
            "Passed",
            9,
            9,
            "manual",
        )
        assert len(api()["tests"]) == 9

        status, headers, body = fetch(f"{base}/plans/{namespace}/smoke")
        assert status == 200 and headers["content-type"].startswith("text/html")
        page = body.decode()
        assert f'href="/files/{namespace}/smoke/{run_id}/report.html"' in page
        assert re.search(r'class="badge Passed"', page)

        status, headers, body = fetch(f"{base}/files/{report_path}")
        assert status == 200, body[:300]
        assert headers["content-security-policy"] == "sandbox allow-scripts"
        assert b"pytest-html" in body
        assert fetch(f"{base}/files/{namespace}/smoke/latest/summary.json")[0] == 200
        assert fetch(f"{base}/files/../../etc/passwd")[0] == 404
    finally:
        forward.terminate()
        forward.wait(timeout=10)

    # The volume is mounted read-only: the server cannot write to it.
    pods = cluster.kubectl_json(
        "get", "pods", "-n", namespace, "-l", "app.kubernetes.io/component=reports-server"
    )["items"]
    assert pods, diag()
    write = cluster.run(
        "kubectl", "exec", "-n", namespace, pods[0]["metadata"]["name"], "--",
        "python", "-c", "open('/reports/tep-e2e-write-test', 'w')",
        check=False,
    )  # fmt: skip
    assert write.returncode != 0 and "Read-only file system" in write.stderr + write.stdout, write
