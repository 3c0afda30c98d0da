"""The operator's core on a real cluster: TestPlan -> CronJob, status, Events, self-healing.

The operator runs as a local process (`python -m tep_operator --namespace <ns>`, see
conftest.py) against TEP_E2E_KUBECONFIG; every test has a namespace and an operator of its
own. Nothing here runs a test suite, so no runner image is needed (see test_runs.py).

The crontabs fire once a year (January 1st), so no scheduled Job starts during a test and
turns the phase to Running.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from typing import Any

import pytest

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not os.environ.get("TEP_E2E_KUBECONFIG"),
        reason="TEP_E2E_KUBECONFIG is not set: the operator end-to-end tests need a disposable cluster "
        "(kind, k3d, minikube); set TEP_E2E_KUBECONFIG (and TEP_E2E_RUNNER_IMAGE for test_runs.py)",
    ),
    pytest.mark.timeout(600),
]

CRONTAB = "0 3 1 1 *"
OTHER_CRONTAB = "0 4 1 1 *"
FIXED_CRONTAB = "0 5 1 1 *"
BAD_CRONTAB = "61 * * * *"  # accepted by the CRD schema (a non-empty string), not by cron
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
MANAGED_BY = ("app.kubernetes.io/managed-by", "tep-operator")
SETTLE = 120  # seconds for the operator to react to a change


def plan_manifest(name: str, namespace: str, crontab: str = CRONTAB, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "tep.dev/v1alpha1",
        "kind": "TestPlan",
        "metadata": {"name": name, "namespace": namespace},
        # The ConfigMap need not exist: scheduling never reads it, only a run's pod mounts it.
        "spec": {"crontab": crontab, "source": {"configMap": {"name": f"{name[:40]}-tests"}}, **spec},
    }


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    found = [c for c in status.get("conditions") or [] if c.get("type") == type_]
    assert found, f"no condition {type_} in {status.get('conditions')}"
    return found[0]


def plan_settled(kubectl, name: str, namespace: str, phase: str):
    """A poll function: the plan once its status caught up with its spec in `phase`."""

    def check() -> dict[str, Any] | None:
        plan = kubectl.get("testplan", name, namespace)
        status = (plan or {}).get("status") or {}
        if (
            status.get("phase") == phase
            and status.get("observedGeneration") == plan["metadata"]["generation"]
        ):
            return plan
        return None

    return check


def cronjob_of(kubectl, namespace: str, name: str) -> dict[str, Any] | None:
    return kubectl.get("cronjob", name, namespace)


def events_count(kubectl, namespace: str, name: str, reason: str) -> int:
    # kopf posts each Event as an object of its own; `count` covers a server-side aggregation.
    return sum(int(e.get("count") or 1) for e in kubectl.events(namespace, name, reason=reason))


def test_plan_becomes_cronjob_with_status(kubectl, wait_until, tep_namespace, tep_operator):
    ns, name = tep_namespace, "nightly"
    kubectl.apply(plan_manifest(name, ns))

    plan = wait_until(plan_settled(kubectl, name, ns, "Scheduled"), SETTLE, "phase Scheduled")
    cj = wait_until(lambda: cronjob_of(kubectl, ns, name), SETTLE, f"CronJob {name}")

    # -- the CronJob ----------------------------------------------------------------------------
    meta, spec = cj["metadata"], cj["spec"]
    assert spec["schedule"] == CRONTAB
    assert spec["suspend"] is False
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec.get("startingDeadlineSeconds"), "startingDeadlineSeconds must always be set"
    assert meta["labels"][MANAGED_BY[0]] == MANAGED_BY[1]
    assert meta["labels"]["tep.dev/plan"] == name
    assert meta["annotations"]["tep.dev/plan-name"] == name
    (owner,) = meta["ownerReferences"]
    assert owner["apiVersion"] == "tep.dev/v1alpha1"
    assert owner["kind"] == "TestPlan"
    assert owner["name"] == name
    assert owner["uid"] == plan["metadata"]["uid"]
    assert owner.get("controller") is True

    job_template = spec["jobTemplate"]
    assert job_template["metadata"]["labels"]["tep.dev/trigger"] == "schedule"
    pod_template = job_template["spec"]["template"]
    assert pod_template["metadata"]["labels"]["tep.dev/plan"] == name
    pod = pod_template["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (runner,) = pod["containers"]
    assert runner["imagePullPolicy"] == "IfNotPresent"
    for key, value in RESTRICTED_CONTAINER.items():
        assert runner["securityContext"].get(key) == value, f"container securityContext.{key}"

    # -- the status -----------------------------------------------------------------------------
    status = plan["status"]
    assert status["observedGeneration"] == plan["metadata"]["generation"]
    assert status["cronJobName"] == name
    assert condition(status, "Valid")["status"] == "True"
    assert condition(status, "Ready")["status"] == "True"
    next_run = dt.datetime.fromisoformat(status["nextRunTime"].replace("Z", "+00:00"))
    assert next_run > dt.datetime.now(dt.UTC)
    assert (next_run.month, next_run.day, next_run.hour, next_run.minute) == (1, 1, 3, 0)

    # -- kubectl: short name, category, printer columns ------------------------------------------
    table = kubectl("get", "tp", name, "-n", ns)
    header, row = table.splitlines()[:2]
    for column in ("NAME", "SCHEDULE", "ENABLED", "LAST RESULT", "PASSED", "FAILED", "NEXT RUN", "AGE"):
        assert column in header, f"column {column} missing from `kubectl get tp`:\n{table}"
    assert "PHASE" not in header, "Phase is a priority-1 column: only with -o wide"
    assert row.split()[0] == name and CRONTAB in row and "true" in row.split()
    assert status["nextRunTime"] in row
    wide = kubectl("get", "tp", name, "-n", ns, "-o", "wide")
    assert "PHASE" in wide.splitlines()[0] and "Scheduled" in wide.splitlines()[1]
    assert f"testplan.tep.dev/{name}" in kubectl("get", "tep", "-n", ns, "-o", "name").split()

    # -- an Event says what was applied ---------------------------------------------------------
    wait_until(
        lambda: kubectl.events(ns, name, reason="CronJobApplied", type="Normal"), SETTLE, "CronJobApplied"
    )


def test_enabled_and_crontab_follow_the_plan(kubectl, wait_until, tep_namespace, tep_operator):
    ns, name = tep_namespace, "toggled"
    kubectl.apply(plan_manifest(name, ns))
    wait_until(plan_settled(kubectl, name, ns, "Scheduled"), SETTLE, "phase Scheduled")

    # enabled: false -> the CronJob is suspended, the plan Suspended
    kubectl.merge_patch("testplan", name, ns, {"spec": {"enabled": False}})
    plan = wait_until(plan_settled(kubectl, name, ns, "Suspended"), SETTLE, "phase Suspended")
    wait_until(lambda: cronjob_of(kubectl, ns, name)["spec"]["suspend"] is True, SETTLE, "suspend: true")
    assert condition(plan["status"], "Ready")["status"] == "True"
    assert not plan["status"].get("nextRunTime"), "a suspended plan has no next run"

    # enabled again, and a new crontab -> the schedule follows
    kubectl.merge_patch("testplan", name, ns, {"spec": {"enabled": True, "crontab": OTHER_CRONTAB}})
    plan = wait_until(plan_settled(kubectl, name, ns, "Scheduled"), SETTLE, "phase Scheduled again")

    def cronjob_follows() -> bool:
        spec = cronjob_of(kubectl, ns, name)["spec"]
        return spec["schedule"] == OTHER_CRONTAB and spec["suspend"] is False

    wait_until(cronjob_follows, SETTLE, f"CronJob schedule {OTHER_CRONTAB!r}, suspend false")
    assert re.fullmatch(r"\d{4}-01-01T04:00:00Z", plan["status"]["nextRunTime"]), plan["status"]


def test_invalid_crontab_keeps_the_last_good_cronjob(kubectl, wait_until, tep_namespace, tep_operator):
    ns, name = tep_namespace, "broken"
    kubectl.apply(plan_manifest(name, ns))
    wait_until(plan_settled(kubectl, name, ns, "Scheduled"), SETTLE, "phase Scheduled")
    wait_until(lambda: cronjob_of(kubectl, ns, name), SETTLE, "the CronJob")

    kubectl.merge_patch("testplan", name, ns, {"spec": {"crontab": BAD_CRONTAB}})
    plan = wait_until(plan_settled(kubectl, name, ns, "Invalid"), SETTLE, "phase Invalid")
    valid = condition(plan["status"], "Valid")
    assert valid["status"] == "False"
    assert valid["reason"] == "InvalidCrontab"
    assert "spec.crontab" in valid["message"], valid

    warnings = wait_until(
        lambda: kubectl.events(ns, name, reason="InvalidCrontab", type="Warning"),
        SETTLE,
        "a Warning Event InvalidCrontab on the TestPlan",
    )
    assert any("spec.crontab" in e.get("message", "") for e in warnings), warnings
    assert warnings[0]["involvedObject"]["kind"] == "TestPlan"
    assert warnings[0]["involvedObject"]["uid"] == plan["metadata"]["uid"]

    cj = cronjob_of(kubectl, ns, name)
    assert cj is not None, "a bad edit must not delete the CronJob"
    assert cj["spec"]["schedule"] == CRONTAB, "the CronJob keeps the last good schedule"
    assert cj["spec"]["suspend"] is False

    # fixed -> valid again, and the CronJob follows
    kubectl.merge_patch("testplan", name, ns, {"spec": {"crontab": FIXED_CRONTAB}})
    plan = wait_until(plan_settled(kubectl, name, ns, "Scheduled"), SETTLE, "phase Scheduled after the fix")
    assert condition(plan["status"], "Valid")["status"] == "True"
    wait_until(
        lambda: cronjob_of(kubectl, ns, name)["spec"]["schedule"] == FIXED_CRONTAB,
        SETTLE,
        f"CronJob schedule {FIXED_CRONTAB!r}",
    )


def test_cronjob_deleted_or_edited_by_hand_is_restored(kubectl, wait_until, tep_namespace, tep_operator):
    ns, name = tep_namespace, "healing"
    kubectl.apply(plan_manifest(name, ns))
    wait_until(plan_settled(kubectl, name, ns, "Scheduled"), SETTLE, "phase Scheduled")
    old_uid = wait_until(lambda: cronjob_of(kubectl, ns, name), SETTLE, "the CronJob")["metadata"]["uid"]

    # deleted by hand -> a new CronJob, the same as before
    kubectl("delete", "cronjob", name, "-n", ns, "--wait=true", "--timeout=60s", timeout=90)

    def recreated() -> dict[str, Any] | None:
        cj = cronjob_of(kubectl, ns, name)
        return cj if cj and cj["metadata"]["uid"] != old_uid else None

    cj = wait_until(recreated, SETTLE, "the deleted CronJob to be restored")
    assert cj["spec"]["schedule"] == CRONTAB
    assert cj["spec"]["suspend"] is False
    assert cj["metadata"]["labels"]["tep.dev/plan"] == name
    assert cj["metadata"]["ownerReferences"][0]["name"] == name

    # edited by hand (suspended while the plan is enabled) -> taken back
    kubectl("patch", "cronjob", name, "-n", ns, "-p", '{"spec":{"suspend":true}}')
    wait_until(
        lambda: cronjob_of(kubectl, ns, name)["spec"]["suspend"] is False,
        SETTLE,
        "the hand-edited CronJob to be taken back to suspend: false",
    )
    assert len(kubectl.items("cronjobs", ns, "-l", f"tep.dev/plan={name}")) == 1


def test_restart_adopts_without_duplicates(kubectl, wait_until, holds_for, tep_namespace, tep_operator):
    ns, name = tep_namespace, "restarted"
    kubectl.apply(plan_manifest(name, ns))
    wait_until(plan_settled(kubectl, name, ns, "Scheduled"), SETTLE, "phase Scheduled")
    uid = wait_until(lambda: cronjob_of(kubectl, ns, name), SETTLE, "the CronJob")["metadata"]["uid"]

    # Events are posted asynchronously: count once the number stopped changing.
    wait_until(lambda: events_count(kubectl, ns, name, "CronJobApplied") >= 1, SETTLE, "CronJobApplied")
    counts = [events_count(kubectl, ns, name, "CronJobApplied")]

    def count_settled() -> bool:
        counts.append(events_count(kubectl, ns, name, "CronJobApplied"))
        return counts[-1] == counts[-2]

    wait_until(count_settled, 60, "the CronJobApplied Events to settle", interval=3)
    before = counts[-1]

    tep_operator.restart()
    # The new process listed the plan and reconciled it (a no-op) ...
    wait_until(
        lambda: "Handler 'plan_event' succeeded" in tep_operator.current_log(),
        SETTLE,
        "the restarted operator to reconcile it",
    )
    # ... and watches CronJobs: a hand edit is taken back (no Event is posted for that).
    kubectl("patch", "cronjob", name, "-n", ns, "-p", '{"spec":{"suspend":true}}')
    wait_until(
        lambda: cronjob_of(kubectl, ns, name)["spec"]["suspend"] is False,
        SETTLE,
        "the restarted operator to take back a hand-edited CronJob",
    )

    def one_cronjob_no_new_events() -> bool:
        cronjobs = kubectl.items("cronjobs", ns, "-l", f"tep.dev/plan={name}")
        return (
            len(cronjobs) == 1
            and cronjobs[0]["metadata"]["uid"] == uid
            and events_count(kubectl, ns, name, "CronJobApplied") == before
        )

    holds_for(
        one_cronjob_no_new_events,
        10,
        f"after the restart: exactly one CronJob (uid {uid}) and still {before} CronJobApplied Event(s)",
    )
    plan = kubectl.get("testplan", name, ns)
    assert not plan["metadata"].get("finalizers")  # deleting a plan never waits for the operator
    assert plan["status"]["phase"] == "Scheduled"
    assert plan["status"]["observedGeneration"] == plan["metadata"]["generation"]


def test_longest_plan_name_is_shortened(kubectl, wait_until, tep_namespace, tep_operator):
    ns = tep_namespace
    # 253 characters, the most a DNS subdomain may have: labels of 63 separated by dots.
    first = "long-plan-name-" + "x" * 48
    name = ".".join([first, "b" * 63, "c" * 63, "d" * 61])
    assert len(name) == 253 and len(first) == 63
    kubectl.apply(plan_manifest(name, ns))

    plan = wait_until(plan_settled(kubectl, name, ns, "Scheduled"), SETTLE, "phase Scheduled")
    cronjob_name = plan["status"]["cronJobName"]
    assert len(cronjob_name) <= 52, cronjob_name
    assert cronjob_name.startswith("long-plan-name-")
    cj = wait_until(lambda: cronjob_of(kubectl, ns, cronjob_name), SETTLE, f"CronJob {cronjob_name}")

    labels = cj["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "tep-operator"
    assert 0 < len(labels["tep.dev/plan"]) <= 63, labels
    assert cj["metadata"]["annotations"]["tep.dev/plan-name"] == name
    assert cj["metadata"]["ownerReferences"][0]["name"] == name
    assert cj["metadata"]["ownerReferences"][0]["uid"] == plan["metadata"]["uid"]
    pod_labels = cj["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    assert pod_labels["tep.dev/plan"] == labels["tep.dev/plan"]
    selected = kubectl.items("cronjobs", ns, "-l", f"tep.dev/plan={labels['tep.dev/plan']}")
    assert [c["metadata"]["name"] for c in selected] == [cronjob_name]


def test_deleting_the_plan_deletes_its_cronjob(kubectl, wait_until, tep_namespace, tep_operator):
    ns, name = tep_namespace, "doomed"
    kubectl.apply(plan_manifest(name, ns))
    wait_until(plan_settled(kubectl, name, ns, "Scheduled"), SETTLE, "phase Scheduled")
    wait_until(lambda: cronjob_of(kubectl, ns, name), SETTLE, "the CronJob")

    kubectl("delete", "testplan", name, "-n", ns, "--wait=true", "--timeout=120s", timeout=150)
    assert kubectl.get("testplan", name, ns) is None
    # The owner reference lets Kubernetes' garbage collector delete it.
    wait_until(lambda: cronjob_of(kubectl, ns, name) is None, SETTLE, "the CronJob to be garbage-collected")
