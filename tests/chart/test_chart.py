"""charts/tep-operator: lint, render, validate against the Kubernetes schemas offline, and check
what the chart promises (security context, RBAC without wildcards, env of the operator, CRD copy).
"""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tep_operator.config import POD_NAME_ENV
from tests.chart.chart_tools import (
    CHART,
    CRD_CHART_COPY,
    CRD_SOURCE,
    VALUES_ALL,
    by_kind,
    component,
    load_crd,
    one,
    plan_jsonschema,
    render,
    run_helm,
)

# The chart's minimum (Chart.yaml kubeVersion) and a recent release.
KUBE_VERSIONS = ["1.27.0", "1.31.0"]

RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
}


def env_of(deployment: dict) -> dict[str, str]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value") for e in container["env"]}


# -- lint and schema validation of every rendered object --------------------------------------


@pytest.mark.parametrize("values", [[], ["-f", str(VALUES_ALL)]], ids=["defaults", "values-all"])
def test_helm_lint_strict(helm, values):
    run_helm(helm, "lint", "--strict", str(CHART), "--namespace", "tep-system", *values)


def validate_objects(objects: list[dict], kube_version: str) -> list[str]:
    problems = []
    for obj in objects:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["apiVersion"] in ("monitoring.coreos.com/v1", "kopf.dev/v1"):
            # No built-in schema: prometheus-operator's and kopf's CRDs are not part of Kubernetes
            # and not in kubernetes-validate. Their shapes are checked by test_service_monitor
            # and test_two_replicas_* instead.
            continue
        try:
            kubernetes_validate.validate(obj, kube_version, strict=True)
        except kubernetes_validate.ValidationError as e:
            problems.append(f"{name} (Kubernetes {kube_version}): {'.'.join(map(str, e.path))}: {e.message}")
    return problems


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("values", ["defaults", "values-all"])
def test_rendered_objects_are_valid_kubernetes(helm, default_objects, all_objects, values, kube_version):
    objects = default_objects if values == "defaults" else all_objects
    assert objects, "helm template rendered nothing"
    problems = validate_objects(objects, kube_version)
    assert not problems, "\n".join(problems)


def test_kinds_rendered_by_default(default_objects):
    kinds = sorted(o["kind"] for o in default_objects)
    assert kinds == sorted(
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "CustomResourceDefinition",
            "Deployment",
            "Deployment",  # the reports server (reportsServer.enabled)
            "PersistentVolumeClaim",
            "Service",
            "Service",
            "ServiceAccount",
        ]
    )


def test_every_namespaced_object_has_a_namespace(default_objects, all_objects):
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}
    for obj in default_objects + all_objects:
        if obj["kind"] not in cluster_scoped:
            assert obj["metadata"].get("namespace"), (
                f"{obj['kind']}/{obj['metadata']['name']} has no namespace"
            )


# -- values.schema.json -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "nonsense=1"], "Additional property nonsense is not allowed"),
        (["--set", "replicaCount=2"], "Additional property replicaCount is not allowed"),
        (["--set", "image.nonsense=x"], "Additional property nonsense is not allowed"),
        (["--set", "reports.sise=10Gi"], "Additional property sise is not allowed"),
        (["--set", "metrics.serviceMonitor.enable=true"], "Additional property enable is not allowed"),
        (["--set", "crds.install=yes"], "crds.install: Invalid type"),
        (["--set", "reports.size=10"], "reports.size: Invalid type"),
        (["--set", "operator.resyncSeconds=soon"], "operator.resyncSeconds: Invalid type"),
        (["--set", "watchNamespaces=qa"], "watchNamespaces: Invalid type"),
        (["--set", "watchNamespaces={qa-*}"], "watchNamespaces.0: Does not match pattern"),
        (["--set", "image.pullPolicy=Sometimes"], "image.pullPolicy"),
        (["--set", "reports.accessModes={ReadWriteAll}"], "reports.accessModes.0"),
        (["--set", "resources.limits.memory=lots"], "resources.limits.memory"),
        (["--set", "operator.metricsPort=70000"], "operator.metricsPort"),
    ],
)
def test_values_schema_rejects(helm, args, message):
    proc = run_helm(helm, "template", "tep", str(CHART), *args, check=False)
    assert proc.returncode != 0, f"helm template {' '.join(args)} should fail"
    assert "values don't meet the specifications of the schema" in proc.stderr, proc.stderr
    assert message in proc.stderr, proc.stderr


def test_values_yaml_documents_every_key():
    """Every value a user sets has a comment right above it in values.yaml (cert-manager style).

    Grouping keys (crds:, image:, reports: ...) need none; their leaves do. Keys inside free-form
    Kubernetes objects (resources.requests.cpu ...) are examples, not options.
    """
    schema = json.loads((CHART / "values.schema.json").read_text())
    lines = (CHART / "values.yaml").read_text().splitlines()
    stack: list[tuple[int, str]] = []  # (indent, key)
    undocumented = []
    for i, line in enumerate(lines):
        m = re.match(r"^( *)([A-Za-z][\w.-]*):", line)
        if not m:
            continue
        indent, key = len(m.group(1)), m.group(2)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        node = schema
        for _, parent in stack:
            node = node.get("properties", {}).get(parent, {}) if node else {}
        stack.append((indent, key))
        if not node or node.get("additionalProperties") is not False:
            continue  # inside a free-form value
        sub = node.get("properties", {}).get(key)
        assert sub is not None, f"values.yaml:{i + 1}: {key} is not in values.schema.json"
        if sub.get("additionalProperties") is False:
            continue  # a grouping key
        if not lines[i - 1].strip().startswith("#"):
            undocumented.append(f"values.yaml:{i + 1}: {line.strip()}")
    assert not undocumented, "values without a comment right above them:\n" + "\n".join(undocumented)


def test_every_schema_key_is_in_values_yaml():
    """values.yaml shows every key the schema allows (so every option is documented there)."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    missing = []

    def walk(node: dict, vals: dict, path: str) -> None:
        for key, sub in node.get("properties", {}).items():
            if key == "global":
                continue
            if key not in vals:
                missing.append(f"{path}{key}")
            elif sub.get("additionalProperties") is False and isinstance(vals[key], dict):
                walk(sub, vals[key], f"{path}{key}.")

    walk(schema, values, "")
    assert not missing, f"schema keys missing from values.yaml: {missing}"


# -- the operator Deployment ------------------------------------------------------------------


@pytest.mark.parametrize("values", ["defaults", "values-all"])
def test_operator_pod_is_restricted(default_objects, all_objects, values):
    objects = default_objects if values == "defaults" else all_objects
    deployment = component(objects, "Deployment", "operator")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"] + pod.get("initContainers", []):
        sc = container["securityContext"]
        for key, want in RESTRICTED_CONTAINER.items():
            assert sc.get(key) is want, f"{container['name']}: securityContext.{key} should be {want}"
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert not sc["capabilities"].get("add")
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in pod["volumes"]
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")


def test_operator_deployment_defaults(default_objects):
    deployment = component(default_objects, "Deployment", "operator")
    spec = deployment["spec"]
    assert spec["replicas"] == 1, "by default one replica, kopf standalone"
    assert spec["strategy"] == {"type": "Recreate"}
    (container,) = spec["template"]["spec"]["containers"]
    assert container["image"] == "ghcr.io/tep-dev/tep-operator:0.1.0"
    assert container["args"] == ["operator"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 8080, "healthz": 8081}
    assert container["resources"]["requests"] == {"cpu": "50m", "memory": "128Mi"}
    assert (
        spec["template"]["spec"]["serviceAccountName"]
        == one(default_objects, "ServiceAccount")["metadata"]["name"]
    )


def test_operator_env_defaults(default_objects):
    env = env_of(component(default_objects, "Deployment", "operator"))
    assert "TEP_OPERATOR_NAMESPACES" not in env, "default: all namespaces"
    assert env["TEP_OPERATOR_RUNNER_IMAGE"] == "ghcr.io/tep-dev/tep-runner:0.1.0"
    assert env["TEP_OPERATOR_RUNNER_IMAGE_PULL_POLICY"] == "IfNotPresent"
    assert env["TEP_OPERATOR_REPORTS_CLAIM"] == "tep-reports"
    assert json.loads(env["TEP_OPERATOR_RUNNER_RESOURCES"]) == {
        "requests": {"cpu": "500m", "memory": "512Mi"},
        "limits": {"cpu": "2", "memory": "2Gi"},
    }
    assert env["TEP_OPERATOR_LIVENESS_PORT"] == "8081"
    assert env["TEP_OPERATOR_METRICS_PORT"] == "8080"
    assert env["TEP_OPERATOR_RESYNC_SECONDS"] == "60"


@pytest.mark.parametrize("values", ["defaults", "values-all"])
def test_operator_identity_is_the_pod_name(default_objects, all_objects, values):
    """kopf's identity comes from the downward API, never from the passwd database."""
    deployment = component(default_objects if values == "defaults" else all_objects, "Deployment", "operator")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (pod_name,) = [e for e in container["env"] if e["name"] == POD_NAME_ENV]
    assert pod_name == {"name": POD_NAME_ENV, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}


def test_operator_env_all_options(all_objects):
    deployment = component(all_objects, "Deployment", "operator")
    env = env_of(deployment)
    assert env["TEP_OPERATOR_NAMESPACES"] == "qa,staging"
    assert env["TEP_OPERATOR_RUNNER_IMAGE"] == "registry.example.com/tep/tep-runner:2024.11"
    assert env["TEP_OPERATOR_RUNNER_IMAGE_PULL_POLICY"] == "Always"
    assert env["TEP_OPERATOR_REPORTS_CLAIM"] == "shared-reports"
    assert json.loads(env["TEP_OPERATOR_RUNNER_RESOURCES"])["limits"] == {"cpu": 4, "memory": "4Gi"}
    assert env["TEP_OPERATOR_LIVENESS_PORT"] == "9081"
    assert env["TEP_OPERATOR_METRICS_PORT"] == "9080"
    assert env["TEP_OPERATOR_RESYNC_SECONDS"] == "30"
    assert env["TZ"] == "UTC" and "NODE_NAME" in env
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"].endswith("@sha256:" + "0123456789abcdef" * 4)
    assert container["args"] == ["operator", "--verbose"]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"metrics": 9080, "healthz": 9081}
    pod = deployment["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["tolerations"][0]["key"] == "dedicated"
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["serviceAccountName"] == "tep-operator-sa"


# -- RBAC -------------------------------------------------------------------------------------


def all_rules(objects: list[dict]) -> list[tuple[str, dict]]:
    return [
        (f"{o['kind']}/{o['metadata'].get('namespace', '')}/{o['metadata']['name']}", rule)
        for o in objects
        if o["kind"] in ("Role", "ClusterRole")
        for rule in o["rules"]
    ]


@pytest.mark.parametrize("values", ["defaults", "values-all"])
def test_rbac_has_no_wildcards(default_objects, all_objects, values):
    objects = default_objects if values == "defaults" else all_objects
    rules = all_rules(objects)
    assert rules
    for where, rule in rules:
        for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
            assert not any("*" in item for item in rule.get(field, [])), (
                f"{where}: wildcard in {field}: {rule}"
            )


def verbs_by_resource(rules: list[dict]) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                out.setdefault((group, resource), set()).update(rule["verbs"])
    return out


NAMESPACED_GRANTS = {
    ("tep.dev", "testplans"): {"get", "list", "watch"},
    ("tep.dev", "testplans/status"): {"patch"},
    ("batch", "cronjobs"): {"list", "watch", "create", "patch"},
    ("batch", "jobs"): {"list", "watch", "create", "delete"},
    ("", "pods"): {"list", "watch"},
    ("", "events"): {"create"},
}


def test_rbac_cluster_wide_by_default(default_objects):
    assert not by_kind(default_objects, "Role") and not by_kind(default_objects, "RoleBinding")
    role = one(default_objects, "ClusterRole")
    assert verbs_by_resource(role["rules"]) == NAMESPACED_GRANTS
    binding = one(default_objects, "ClusterRoleBinding")
    sa = one(default_objects, "ServiceAccount")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": "tep-system"}
    ]


def test_rbac_namespaced_mode(helm):
    objects = render(helm, "--set", "watchNamespaces={qa,staging}")
    roles = by_kind(objects, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["qa", "staging"]
    for role in roles:
        assert verbs_by_resource(role["rules"]) == NAMESPACED_GRANTS
    bindings = by_kind(objects, "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["qa", "staging"]
    for binding in bindings:
        assert binding["roleRef"]["kind"] == "Role"
        assert binding["subjects"][0]["namespace"] == "tep-system"
    # Nothing cluster-scoped: kopf's CRD/namespace scanning is off (tep_operator/handlers.py).
    assert not by_kind(objects, "ClusterRole") and not by_kind(objects, "ClusterRoleBinding")
    assert env_of(component(objects, "Deployment", "operator"))["TEP_OPERATOR_NAMESPACES"] == "qa,staging"
    # the reports claim follows the watched namespaces
    assert sorted(p["metadata"]["namespace"] for p in by_kind(objects, "PersistentVolumeClaim")) == [
        "qa",
        "staging",
    ]


def test_rbac_create_false(helm):
    objects = render(helm, "--set", "rbac.create=false")
    assert not {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"} & {o["kind"] for o in objects}


def test_existing_service_account(helm):
    objects = render(helm, "--set", "serviceAccount.create=false", "--set", "serviceAccount.name=ops")
    assert not by_kind(objects, "ServiceAccount")
    assert (
        component(objects, "Deployment", "operator")["spec"]["template"]["spec"]["serviceAccountName"]
        == "ops"
    )
    assert one(objects, "ClusterRoleBinding")["subjects"][0]["name"] == "ops"
    proc = run_helm(helm, "template", "tep", str(CHART), "--set", "serviceAccount.create=false", check=False)
    assert proc.returncode != 0 and "serviceAccount.name is required" in proc.stderr


# -- reports volume ---------------------------------------------------------------------------


def test_reports_claim_defaults(default_objects):
    pvc = one(default_objects, "PersistentVolumeClaim")
    assert pvc["metadata"]["name"] == "tep-reports"
    assert pvc["metadata"]["namespace"] == "tep-system"
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    assert pvc["spec"]["resources"]["requests"]["storage"] == "10Gi"
    assert "storageClassName" not in pvc["spec"], "null: the cluster's default StorageClass"


def test_reports_existing_claim(all_objects):
    assert not by_kind(all_objects, "PersistentVolumeClaim")


def test_reports_storage_class(helm):
    (pvc,) = by_kind(
        render(
            helm,
            "--set",
            "reports.storageClassName=nfs",
            "--set",
            "reports.keep=false",
            "--set",
            "reports.accessModes={ReadWriteOnce}",
        ),
        "PersistentVolumeClaim",
    )
    assert pvc["spec"]["storageClassName"] == "nfs"
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert "helm.sh/resource-policy" not in (pvc["metadata"].get("annotations") or {})
    (pvc,) = by_kind(render(helm, "--set", "reports.storageClassName=-"), "PersistentVolumeClaim")
    assert pvc["spec"]["storageClassName"] == ""
    pvcs = by_kind(render(helm, "--set", "reports.namespaces={qa,dev}"), "PersistentVolumeClaim")
    assert sorted(p["metadata"]["namespace"] for p in pvcs) == ["dev", "qa"]


# -- metrics ----------------------------------------------------------------------------------


def test_metrics_service(default_objects):
    service = component(default_objects, "Service", "metrics")
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"}
    ]
    pod_labels = component(default_objects, "Deployment", "operator")["spec"]["template"]["metadata"][
        "labels"
    ]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert not by_kind(default_objects, "ServiceMonitor"), "ServiceMonitor is off by default"


def test_service_monitor(all_objects):
    monitor = one(all_objects, "ServiceMonitor")
    service = component(all_objects, "Service", "metrics")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["namespace"] == "monitoring"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [service["metadata"]["namespace"]]}
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint == {
        "port": "metrics",
        "path": "/metrics",
        "honorLabels": True,
        "interval": "1m",
        "scrapeTimeout": "20s",
    }
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}


def test_service_monitor_needs_service(helm):
    proc = run_helm(
        helm,
        "template",
        "tep",
        str(CHART),
        "--set",
        "metrics.serviceMonitor.enabled=true",
        "--set",
        "metrics.service.enabled=false",
        check=False,
    )
    assert proc.returncode != 0 and "needs metrics.service.enabled" in proc.stderr


# -- CRD --------------------------------------------------------------------------------------


def test_chart_crd_copy_equals_source():
    assert CRD_SOURCE.is_file(), f"{CRD_SOURCE} is missing"
    assert CRD_CHART_COPY.is_file() and not CRD_CHART_COPY.is_symlink(), (
        f"{CRD_CHART_COPY} must be a real file (a symlink does not survive `helm package`)"
    )
    assert load_crd(CRD_CHART_COPY) == load_crd(CRD_SOURCE), (
        "the chart's CRD differs from crds/testplans.tep.dev.yaml; sync it with:\n"
        "    cp crds/testplans.tep.dev.yaml charts/tep-operator/files/crds/"
    )


def test_rendered_crd_matches_source(default_objects):
    source = load_crd()
    crd = one(default_objects, "CustomResourceDefinition")
    assert crd["spec"] == source["spec"]
    assert crd["metadata"]["name"] == source["metadata"]["name"]
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert source["metadata"].get("labels", {}).items() <= crd["metadata"]["labels"].items()


def test_crd_options(helm, all_objects):
    crd = one(all_objects, "CustomResourceDefinition")
    assert "helm.sh/resource-policy" not in (crd["metadata"].get("annotations") or {}), "crds.keep=false"
    assert not by_kind(render(helm, "--set", "crds.install=false"), "CustomResourceDefinition")


def test_crd_is_valid_for_the_api_server(helm):
    """The CRD object itself against the apiextensions.k8s.io/v1 schema (strict: unknown fields fail)."""
    for path in (CRD_SOURCE, CRD_CHART_COPY):
        problems = validate_objects([load_crd(path)], "1.31.0")
        assert not problems, f"{path}:\n" + "\n".join(problems)


def test_packaged_chart_carries_the_crd(helm, tmp_path):
    """`helm package` keeps files/crds (no symlink) and the packaged chart renders the CRD."""
    run_helm(helm, "package", str(CHART), "--destination", str(tmp_path))
    (tgz,) = tmp_path.glob("tep-operator-0.1.0.tgz")
    objects = render(helm, chart=tgz)
    assert one(objects, "CustomResourceDefinition")["spec"] == load_crd()["spec"]


# -- NOTES.txt --------------------------------------------------------------------------------


def render_notes(helm: str, tmp_path: Path, *args: str) -> str:
    """helm template does not print NOTES.txt; render it through a copy of the chart."""
    chart = tmp_path / "tep-operator"
    shutil.copytree(CHART, chart)
    notes = (chart / "templates" / "NOTES.txt").read_text()
    (chart / "templates" / "_notes_under_test.tpl").write_text(
        '{{- define "test.notes" }}' + notes + "{{- end }}"
    )
    (chart / "templates" / "notes_under_test.yaml").write_text(
        'notes: {{ include "test.notes" . | toJson }}\n'
    )
    proc = run_helm(
        helm,
        "template",
        "tep",
        str(chart),
        "-n",
        "tep-system",
        "--show-only",
        "templates/notes_under_test.yaml",
        *args,
    )
    return yaml.safe_load(proc.stdout)["notes"]


def test_notes_tell_what_to_do_next(helm, tmp_path):
    notes = render_notes(helm, tmp_path)
    assert "kubectl -n tep-system rollout status deployment/tep-tep-operator" in notes
    assert "create configmap" in notes
    assert "kind: TestPlan" in notes
    assert "kubectl get tp" in notes
    assert "tep run" in notes
    assert "keeps the TestPlan CRD" in notes
    # the TestPlan the notes show is valid
    heredoc = notes.split("<<'YAML'", 1)[1].split("\n", 1)[1].split("YAML\n", 1)[0]
    plan = yaml.safe_load(textwrap.dedent(heredoc))
    assert plan["kind"] == "TestPlan"
    assert not list(jsonschema.Draft7Validator(plan_jsonschema()).iter_errors(plan))
    notes = render_notes(helm, tmp_path / "ns", "--set", "watchNamespaces={qa,dev}")
    assert "It watches TestPlans in: qa, dev." in notes
    assert "kubectl -n qa get testplans" in notes


def test_chart_requires_kubernetes_1_27(helm):
    """CronJob spec.timeZone (TestPlan spec.timeZone) is GA since 1.27: older clusters are refused."""
    proc = run_helm(helm, "template", "tep", str(CHART), "--kube-version", "1.26.9", check=False)
    assert proc.returncode != 0 and "kubeVersion" in proc.stderr, proc.stderr
    assert render(helm, kube_version="1.27.0")


def test_two_replicas_elect_a_leader_through_kopf_peering(helm):
    objects = render(helm, "--set", "replicas=2")
    deployment = component(objects, "Deployment", "operator")
    assert deployment["spec"]["replicas"] == 2
    # a new pod starts as the standby before the old one stops: never zero operators
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    peering = one(objects, "ClusterKopfPeering")
    assert env_of(deployment)["TEP_OPERATOR_PEERING"] == peering["metadata"]["name"]
    grants = verbs_by_resource(one(objects, "ClusterRole")["rules"])
    assert grants.pop(("kopf.dev", "clusterkopfpeerings")) == {"get", "list", "watch", "patch"}
    assert grants == NAMESPACED_GRANTS
    # one replica: none of it
    single = render(helm)
    assert not by_kind(single, "ClusterKopfPeering") and "TEP_OPERATOR_PEERING" not in env_of(
        component(single, "Deployment", "operator")
    )


def test_two_replicas_watching_namespaces_peer_in_each(helm):
    objects = render(helm, "--set", "replicas=2", "--set", "watchNamespaces={qa,staging}")
    peerings = by_kind(objects, "KopfPeering")
    assert sorted(p["metadata"]["namespace"] for p in peerings) == ["qa", "staging"]
    assert not by_kind(objects, "ClusterKopfPeering") and not by_kind(objects, "ClusterRole")
    for role in by_kind(objects, "Role"):
        grants = verbs_by_resource(role["rules"])
        assert grants.pop(("kopf.dev", "kopfpeerings")) == {"get", "list", "watch", "patch"}
        assert grants == NAMESPACED_GRANTS


def test_kopf_peering_crds_ship_with_the_chart_and_are_valid(helm):
    crds = by_kind(render(helm, "--include-crds", "--set", "crds.install=false"), "CustomResourceDefinition")
    by_name = {crd["metadata"]["name"]: crd for crd in crds}
    assert set(by_name) == {"clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"}
    assert by_name["clusterkopfpeerings.kopf.dev"]["spec"]["scope"] == "Cluster"
    assert by_name["kopfpeerings.kopf.dev"]["spec"]["scope"] == "Namespaced"
    assert not validate_objects(crds, "1.31.0")


@pytest.mark.parametrize("replicas", ["0", "two"])
def test_replicas_must_be_a_positive_whole_number(helm, replicas):
    proc = run_helm(helm, "template", "tep", str(CHART), "--set", f"replicas={replicas}", check=False)
    assert proc.returncode != 0 and "replicas" in proc.stderr
