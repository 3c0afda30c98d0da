"""The chart's notification and alerting parts: Secret RBAC, PrometheusRule, Grafana dashboard,
and the alerts run by `promtool check rules` / `promtool test rules` (Debian's prometheus package)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import prometheus_client
import pytest
import yaml

from tep_operator import metrics  # noqa: F401 (registers the operator's metrics)
from tests.chart.chart_tools import CHART, by_kind, component, one, render, run_helm
from tests.chart.test_chart import env_of, verbs_by_resource

ALERTS_TEST = Path(__file__).resolve().parent / "alerts_test.yaml"
ALERTS = ["TestPlanFailing", "TestPlanErrors", "TestPlanMissedSchedule", "NotificationsFailing"]
SECRETS = ("", "secrets")


def exported_metric_names() -> set[str]:
    """Every series name the operator's metrics module exports (counters with _total, histograms' parts)."""
    found = set()
    for metric in prometheus_client.REGISTRY.collect():
        if metric.name.startswith("tep_"):
            found |= {metric.name, f"{metric.name}_total", f"{metric.name}_bucket", f"{metric.name}_sum"}
    return found


def metrics_in(expr: str) -> set[str]:
    return set(re.findall(r"\btep_[a-z_]+", expr))


# -- RBAC: Secrets only when enabled, only get, only where plans live ---------------------------


def test_no_secret_access_by_default(default_objects, helm):
    for objects in (default_objects, render(helm, "--set", "watchNamespaces={qa}")):
        rules = [r for o in objects if o["kind"] in ("Role", "ClusterRole") for r in o["rules"]]
        assert SECRETS not in verbs_by_resource(rules)


def test_notifications_grant_get_on_secrets_cluster_wide(helm):
    objects = render(helm, "--set", "notifications.enabled=true")
    assert verbs_by_resource(one(objects, "ClusterRole")["rules"])[SECRETS] == {"get"}


def test_notifications_grant_get_on_secrets_in_the_watched_namespaces_only(helm):
    objects = render(helm, "--set", "notifications.enabled=true", "--set", "watchNamespaces={qa,staging}")
    assert not by_kind(objects, "ClusterRole")
    roles = by_kind(objects, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["qa", "staging"]
    for role in roles:
        assert verbs_by_resource(role["rules"])[SECRETS] == {"get"}


def test_settings_reach_the_operator(default_objects, all_objects):
    env = env_of(component(default_objects, "Deployment", "operator"))
    assert "TEP_OPERATOR_REPORTS_URL" not in env
    assert (env["TEP_OPERATOR_NOTIFY_TIMEOUT_SECONDS"], env["TEP_OPERATOR_NOTIFY_RETRY_SECONDS"]) == (
        "10",
        "300",
    )
    env = env_of(component(all_objects, "Deployment", "operator"))
    assert env["TEP_OPERATOR_REPORTS_URL"] == "https://tep.example.com/reports"
    assert (env["TEP_OPERATOR_NOTIFY_TIMEOUT_SECONDS"], env["TEP_OPERATOR_NOTIFY_RETRY_SECONDS"]) == (
        "5",
        "120",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "notifications.enable=true"], "Additional property enable is not allowed"),
        (["--set", "notifications.reportsUrl=reports.example.com"], "notifications.reportsUrl"),
        (["--set", "notifications.retrySeconds=0"], "notifications.retrySeconds"),
        (["--set", "prometheusRule.severity=page"], "Additional property severity is not allowed"),
        (["--set", "grafanaDashboard.label=x"], "Additional property label is not allowed"),
    ],
)
def test_values_schema_rejects(helm, args, message):
    proc = run_helm(helm, "template", "tep", str(CHART), *args, check=False)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr


# -- PrometheusRule -----------------------------------------------------------------------------


def rendered_rule(helm: str) -> dict:
    return one(
        render(helm, "--set", "prometheusRule.enabled=true", "--set", "prometheusRule.alertLabels.team=qa"),
        "PrometheusRule",
    )


def test_prometheus_rule(all_objects, helm):
    rule = one(all_objects, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["namespace"] == "monitoring"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    alerts = [r for group in rule["spec"]["groups"] for r in group["rules"]]
    assert [a["alert"] for a in alerts] == ALERTS
    exported = exported_metric_names()
    for alert in alerts:
        assert alert["labels"]["team"] == "qa"
        used = metrics_in(alert["expr"])
        assert used and used <= exported, (
            f"{alert['alert']} uses metrics the operator does not export: {used - exported}"
        )
    assert not by_kind(render(helm), "PrometheusRule"), "off by default"


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        pytest.skip("promtool not found: apt-get install prometheus (.ci/run does)")
    return found


def test_promtool_checks_and_unit_tests_the_alerts(helm, promtool, tmp_path):
    rule = rendered_rule(helm)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    shutil.copy(ALERTS_TEST, tmp_path / "alerts_test.yaml")
    for command in (["check", "rules", "rules.yaml"], ["test", "rules", "alerts_test.yaml"]):
        proc = subprocess.run([promtool, *command], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"promtool {' '.join(command)}:\n{proc.stdout}{proc.stderr}"
    tested = set(re.findall(r"alertname: (\w+)", ALERTS_TEST.read_text()))
    assert tested == set(ALERTS), "every alert has its promtool unit tests"


def test_promtool_tests_can_fail(helm, promtool, tmp_path):
    """The unit tests do judge the rules: a rule that fires once per failed Job fails them."""
    rule = rendered_rule(helm)
    groups = rule["spec"]["groups"]
    groups[0]["rules"][0]["expr"] = (
        'sum by (namespace, plan) (increase(tep_runs_total{result="Failed"}[5m])) > 0'
    )
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    shutil.copy(ALERTS_TEST, tmp_path / "alerts_test.yaml")
    proc = subprocess.run(
        [promtool, "test", "rules", "alerts_test.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0 and "TestPlanFailing" in proc.stdout + proc.stderr


# -- Grafana dashboard --------------------------------------------------------------------------


def test_grafana_dashboard(all_objects, default_objects):
    (configmap,) = [
        o for o in by_kind(all_objects, "ConfigMap") if o["metadata"]["name"].endswith("-dashboard")
    ]
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["namespace"] == "monitoring"
    assert configmap["metadata"]["annotations"] == {"grafana_folder": "Testing"}
    dashboard = json.loads(configmap["data"]["tep-operator.json"])
    assert dashboard["uid"] == "tep-operator-testplans"
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = set().union(*(metrics_in(e) for e in exprs))
    assert {"tep_last_run_result", "tep_consecutive_failures", "tep_schedule_overdue"} <= used
    assert used <= exported_metric_names(), used - exported_metric_names()
    assert not by_kind(default_objects, "ConfigMap"), "off by default"
