"""The chart's reports server (reportsServer): read-only, tokenless, restricted, probed, and reachable."""

from __future__ import annotations

import re

import pytest

from tep_operator.browser import DEFAULT_PORT
from tests.chart.chart_tools import CHART, by_kind, component, render, run_helm
from tests.chart.test_chart import RESTRICTED_CONTAINER, render_notes


def server_of(objects):
    return component(objects, "Deployment", "reports-server"), component(objects, "Service", "reports-server")


def test_defaults(default_objects):
    deployment, service = server_of(default_objects)
    assert deployment["metadata"]["namespace"] == service["metadata"]["namespace"] == "tep-system"
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/tep-dev/tep-operator:0.1.0"  # the operator image has `tep serve`
    assert container["args"] == ["serve", "--reports", "/reports", "--host", "0.0.0.0", "--port", "8000"]
    assert {"name": "reports", "mountPath": "/reports", "readOnly": True} in container["volumeMounts"]
    assert {
        "name": "reports",
        "persistentVolumeClaim": {"claimName": "tep-reports", "readOnly": True},
    } in pod["volumes"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert container["resources"]["requests"] == {"cpu": "20m", "memory": "96Mi"}
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


@pytest.mark.parametrize("values", ["defaults", "values-all"])
def test_restricted_and_tokenless(default_objects, all_objects, values):
    deployment, _ = server_of(default_objects if values == "defaults" else all_objects)
    pod = deployment["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert "serviceAccountName" not in pod
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    sc = container["securityContext"]
    for key, want in RESTRICTED_CONTAINER.items():
        assert sc.get(key) is want, key
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert all(m.get("readOnly") for m in container["volumeMounts"] if m["name"] == "reports")


@pytest.mark.parametrize("values", ["defaults", "values-all"])
def test_selectors_never_overlap(default_objects, all_objects, values):
    """The operator's Deployment and metrics Service must not select the server's pods, nor the reverse."""
    objects = default_objects if values == "defaults" else all_objects
    server, server_service = server_of(objects)
    operator = component(objects, "Deployment", "operator")
    server_pod = server["spec"]["template"]["metadata"]["labels"]
    operator_pod = operator["spec"]["template"]["metadata"]["labels"]

    def selects(selector, labels):
        return all(labels.get(k) == v for k, v in selector.items())

    assert not selects(operator["spec"]["selector"]["matchLabels"], server_pod)
    assert not selects(server["spec"]["selector"]["matchLabels"], operator_pod)
    for service in by_kind(objects, "Service"):
        if service is not server_service:
            assert not selects(service["spec"]["selector"], server_pod), service["metadata"]["name"]
    assert selects(server_service["spec"]["selector"], server_pod)


def test_all_options(all_objects):
    deployment, service = server_of(all_objects)
    assert deployment["metadata"]["namespace"] == service["metadata"]["namespace"] == "qa"
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"][-1] == "9000" and container["ports"][0]["containerPort"] == 9000
    assert {
        "name": "reports",
        "persistentVolumeClaim": {"claimName": "shared-reports", "readOnly": True},
    } in pod["volumes"]
    assert container["resources"]["limits"] == {"memory": "512Mi"}
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"} and pod["tolerations"][0]["value"] == "tools"
    assert "podAffinity" in pod["affinity"]
    assert spec["template"]["metadata"]["annotations"] == {"example.com/owner": "qa-team"}
    assert spec["template"]["metadata"]["labels"]["example.com/tier"] == "web"
    assert service["spec"]["ports"][0]["port"] == 8080
    assert service["metadata"]["annotations"] == {"example.com/expose": "internal"}


def test_disabled(helm):
    objects = render(helm, "--set", "reportsServer.enabled=false")
    assert not [
        o for o in objects if o["metadata"]["labels"].get("app.kubernetes.io/component") == "reports-server"
    ]


def test_namespace_follows_the_claim(helm):
    objects = render(helm, "--set", "watchNamespaces={qa,dev}")
    deployment, _ = server_of(objects)
    assert deployment["metadata"]["namespace"] == "qa"  # the claim is created there, the server mounts it


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "reportsServer.enable=true"], "Additional property enable is not allowed"),
        (["--set", "reportsServer.service.type=NodePort"], "Additional property type is not allowed"),
        (["--set", "reportsServer.enabled=yes"], "reportsServer.enabled: Invalid type"),
        (["--set", "reportsServer.port=0"], "reportsServer.port"),
        (["--set", "reportsServer.resources.limits.memory=lots"], "reportsServer.resources.limits.memory"),
        (["--set", "reportsServer.namespace=Not_A_Name"], "reportsServer.namespace"),
    ],
)
def test_schema_rejects(helm, args, message):
    proc = run_helm(helm, "template", "tep", str(CHART), *args, check=False)
    assert proc.returncode != 0, args
    assert "values don't meet the specifications of the schema" in proc.stderr, proc.stderr
    assert message in proc.stderr, proc.stderr


def test_notes_give_the_port_forward_line(helm, tmp_path):
    notes = render_notes(helm, tmp_path)
    line = f"kubectl -n tep-system port-forward svc/tep-tep-operator-reports {DEFAULT_PORT}:80"
    assert line in notes and f"http://127.0.0.1:{DEFAULT_PORT}/" in notes
    assert "Ingress with authentication" in notes
    off = render_notes(helm, tmp_path / "off", "--set", "reportsServer.enabled=false")
    assert "port-forward" not in off


def test_values_say_how_to_publish_it():
    values = (CHART / "values.yaml").read_text()
    block = values[values.index("# The report browser") : values.index("reportsServer:")]
    assert re.search(r"Ingress with authentication", block) and "oauth2-proxy" in block
