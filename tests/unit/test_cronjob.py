"""Rendering a plan into its CronJob and manual Job: every field, pinned."""

from typing import Any

import pytest

from tep_operator import names
from tep_operator.config import OperatorConfig
from tep_operator.cronjob import (
    JOB_DEADLINE_MARGIN_SECONDS,
    TERMINATION_GRACE_SECONDS,
    drifted,
    render_cronjob,
    render_manual_job,
    same_spec,
)
from tep_operator.plan import read_plan
from tep_runner.stopping import STOP_SECONDS

CONFIG = OperatorConfig(
    runner_image="registry.local/tep-runner:1",
    runner_image_pull_policy="IfNotPresent",
    reports_claim="tep-reports",
    runner_resources={"limits": {"cpu": "2", "memory": "1Gi"}},
)


def body(name: str = "smoke", **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"crontab": "*/30 * * * *", "source": {"configMap": {"name": "smoke-tests"}}}
    base.update(spec)
    return {
        "apiVersion": "tep.dev/v1alpha1",
        "kind": "TestPlan",
        "metadata": {"name": name, "namespace": "qa", "uid": "0a1b-uid", "generation": 1},
        "spec": base,
    }


def render(**spec: Any) -> dict[str, Any]:
    return render_cronjob(read_plan(body(**spec)), CONFIG)


def pod(cronjob: dict[str, Any]) -> dict[str, Any]:
    return cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def runner(cronjob: dict[str, Any]) -> dict[str, Any]:
    (container,) = pod(cronjob)["containers"]
    return container


def env(cronjob: dict[str, Any]) -> dict[str, Any]:
    return {var["name"]: var.get("value", var.get("valueFrom")) for var in runner(cronjob)["env"]}


def test_cronjob_schedule_and_policies() -> None:
    cj = render(timeZone="Asia/Shanghai", concurrencyPolicy="Replace", startingDeadlineSeconds=120)
    assert cj["apiVersion"] == "batch/v1" and cj["kind"] == "CronJob"
    spec = cj["spec"]
    assert spec["schedule"] == "*/30 * * * *"
    assert spec["timeZone"] == "Asia/Shanghai"
    assert spec["suspend"] is False
    assert spec["concurrencyPolicy"] == "Replace"
    assert spec["startingDeadlineSeconds"] == 120
    assert spec["successfulJobsHistoryLimit"] == 3 and spec["failedJobsHistoryLimit"] == 3


def test_defaults_always_set_starting_deadline_and_no_time_zone() -> None:
    spec = render()["spec"]
    assert spec["startingDeadlineSeconds"] == 300  # never unset: the 100-missed-schedules trap
    assert spec["concurrencyPolicy"] == "Forbid"
    assert "timeZone" not in spec


def test_enabled_false_suspends() -> None:
    assert render(enabled=False)["spec"]["suspend"] is True


def test_job_runs_once_within_its_deadline() -> None:
    job = render(activeDeadlineSeconds=900)["spec"]["jobTemplate"]["spec"]
    # The kubelet enforces the pod's deadline to the second and keeps the pod and its termination message;
    # the Job's comes later, only as a backstop, after the pod's grace period for the runner to write.
    assert job["template"]["spec"]["activeDeadlineSeconds"] == 900
    assert job["template"]["spec"]["terminationGracePeriodSeconds"] == TERMINATION_GRACE_SECONDS
    assert TERMINATION_GRACE_SECONDS > STOP_SECONDS  # the runner's longest stop, and time to write after it
    assert job["activeDeadlineSeconds"] == 900 + JOB_DEADLINE_MARGIN_SECONDS
    assert JOB_DEADLINE_MARGIN_SECONDS > TERMINATION_GRACE_SECONDS
    assert job["backoffLimit"] == 0
    assert job["template"]["spec"]["restartPolicy"] == "Never"
    assert "completionMode" not in job


def test_shards_make_an_indexed_job_that_fails_per_index() -> None:
    job = render(shards=4)["spec"]["jobTemplate"]["spec"]
    assert job["completionMode"] == "Indexed"
    assert job["completions"] == 4 and job["parallelism"] == 4
    assert job["backoffLimitPerIndex"] == 0
    assert "backoffLimit" not in job
    assert env(render(shards=4))["TEP_SHARDS"] == "4"


def test_labels_annotations_and_owner_everywhere() -> None:
    cj = render()
    expected_labels = {"app.kubernetes.io/managed-by": "tep-operator", "tep.dev/plan": "smoke"}
    assert cj["metadata"]["labels"] == expected_labels
    assert cj["metadata"]["annotations"]["tep.dev/plan-name"] == "smoke"
    assert set(cj["metadata"]["annotations"]) == {"tep.dev/plan-name", "tep.dev/spec-hash"}
    assert cj["metadata"]["namespace"] == "qa" and cj["metadata"]["name"] == "smoke"
    assert cj["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "tep.dev/v1alpha1",
            "kind": "TestPlan",
            "name": "smoke",
            "uid": "0a1b-uid",
            "controller": True,
        }
    ]
    job_meta = cj["spec"]["jobTemplate"]["metadata"]
    pod_meta = cj["spec"]["jobTemplate"]["spec"]["template"]["metadata"]
    for meta in (job_meta, pod_meta):
        assert meta["labels"] == {**expected_labels, "tep.dev/trigger": "schedule"}
        assert meta["annotations"]["tep.dev/plan-name"] == "smoke"


def test_a_253_character_name_is_shortened_stably() -> None:
    long_name = ("a" * 60 + ".") * 4 + "b" * 9
    assert len(long_name) == 253  # the longest name Kubernetes allows
    plan = read_plan(body(name=long_name))
    cj = render_cronjob(plan, CONFIG)
    name = cj["metadata"]["name"]
    label = cj["metadata"]["labels"]["tep.dev/plan"]
    assert len(name) <= 52 and len(label) <= 63
    assert name[-1].isalnum() and label[-1].isalnum()
    assert cj["metadata"]["annotations"]["tep.dev/plan-name"] == long_name
    assert cj["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]["tep.dev/plan"] == label
    # stable: the same name gives the same short names; a sibling name does not collide
    assert render_cronjob(read_plan(body(name=long_name)), CONFIG)["metadata"]["name"] == name
    sibling = render_cronjob(read_plan(body(name=long_name[:-1] + "c")), CONFIG)
    assert sibling["metadata"]["name"] != name
    assert sibling["metadata"]["labels"]["tep.dev/plan"] != label
    # the Job the CronJob controller names <cronjob>-<11 chars> still fits a label value
    assert len(name) + 11 <= 63
    manual = render_manual_job(plan, CONFIG, "2026-11-21T19:42:00Z", "run-1")
    assert len(manual["metadata"]["name"]) <= 63


def test_short_names_are_kept() -> None:
    name = "x" * 52
    assert names.cronjob_name(name) == name
    assert names.plan_label("y" * 63) == "y" * 63
    assert len(names.cronjob_name("x" * 53)) == 52


def test_restricted_security() -> None:
    cj = render()
    spec = pod(cj)
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "fsGroup": 65532,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert runner(cj)["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert "serviceAccountName" not in spec


def test_runner_settings() -> None:
    cj = render(
        pytest={"args": ["-k", "smoke and not slow"], "workers": 3, "dist": "worksteal", "reruns": 2},
        reports={"keepLast": 5, "maxAgeDays": 3},
    )
    e = env(cj)
    assert e["TEP_NAMESPACE"] == "qa" and e["TEP_PLAN"] == "smoke"
    assert e["TEP_TESTS_DIR"] == "/tests" and e["TEP_REPORTS_DIR"] == "/reports"
    assert e["TEP_SOURCE_ROOT"] == "/tests"  # the configMap mount: pytest finds the suite's configuration
    assert "TEP_PYTEST_CONFIG_FILE" not in e and "TEP_PYTEST_ROOT_DIR" not in e
    assert e["TEP_WORKERS"] == "3" and e["TEP_DIST"] == "worksteal" and e["TEP_RERUNS"] == "2"
    assert e["TEP_PYTEST_ARGS"] == '["-k", "smoke and not slow"]'  # a JSON list, never a shell string
    assert e["TEP_KEEP_LAST"] == "5" and e["TEP_MAX_AGE_DAYS"] == "3"
    assert e["TEP_TERMINATION_LOG"] == "/dev/termination-log"
    assert e["TEP_JOB_NAME"] == {"fieldRef": {"fieldPath": "metadata.labels['job-name']"}}
    assert "PYTEST_XDIST_AUTO_NUM_WORKERS" not in e  # workers is a number, not auto
    assert "TEP_RUN_ID" not in e  # scheduled runs derive it from the Job name
    container = runner(cj)
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert container["terminationMessagePolicy"] == "File"


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        ({"limits": {"cpu": "1500m"}}, "2"),
        ({"limits": {"cpu": "4"}, "requests": {"cpu": "1"}}, "4"),
        ({}, "2"),  # falls back to the operator's default limit of 2 CPUs
    ],
)
def test_auto_workers_follow_the_cpu_limit(resources: dict[str, Any], expected: str) -> None:
    cj = render(resources=resources) if resources else render()
    assert env(cj)["PYTEST_XDIST_AUTO_NUM_WORKERS"] == expected
    assert env(cj)["TEP_WORKERS"] == "auto"


def test_no_cpu_limit_anywhere_leaves_auto_to_xdist() -> None:
    plan = read_plan(body())
    cj = render_cronjob(plan, OperatorConfig(runner_resources={}))
    assert "PYTEST_XDIST_AUTO_NUM_WORKERS" not in env(cj)
    assert "resources" not in runner(cj)


def test_resources_image_and_claim() -> None:
    cj = render(
        resources={"limits": {"cpu": "1", "memory": "2Gi"}},
        image="org/tests:2",
        reports={"claimName": "team-reports"},
    )
    assert runner(cj)["resources"] == {"limits": {"cpu": "1", "memory": "2Gi"}}
    assert runner(cj)["image"] == "org/tests:2" and runner(cj)["imagePullPolicy"] == "IfNotPresent"
    volumes = {v["name"]: v for v in pod(cj)["volumes"]}
    assert volumes["reports"]["persistentVolumeClaim"] == {"claimName": "team-reports"}
    defaults = render()
    assert runner(defaults)["image"] == "registry.local/tep-runner:1"
    assert runner(defaults)["resources"] == {"limits": {"cpu": "2", "memory": "1Gi"}}
    assert {v["name"]: v for v in pod(defaults)["volumes"]}["reports"]["persistentVolumeClaim"] == {
        "claimName": "tep-reports"
    }


def test_env_and_env_from_pass_through_after_the_settings() -> None:
    user_env = [
        {"name": "TEP_ENV", "value": "qa"},
        {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}},
    ]
    cj = render(env=user_env, envFrom=[{"secretRef": {"name": "more"}}])
    assert runner(cj)["env"][-2:] == user_env
    assert runner(cj)["envFrom"] == [{"secretRef": {"name": "more"}}]


def test_config_map_source() -> None:
    cj = render()
    volumes = {v["name"]: v for v in pod(cj)["volumes"]}
    assert volumes["tests"]["configMap"] == {"name": "smoke-tests", "defaultMode": 0o444}
    mounts = {m["name"]: m for m in runner(cj)["volumeMounts"]}
    assert mounts["tests"] == {"name": "tests", "mountPath": "/tests", "readOnly": True}
    assert mounts["reports"]["mountPath"] == "/reports"
    assert mounts["tmp"]["mountPath"] == "/tmp"  # the root filesystem is read-only
    assert "initContainers" not in pod(cj)


def test_git_source_clones_in_an_init_container_with_secret_credentials_only() -> None:
    cj = render(
        source={
            "git": {
                "url": "https://host/org/repo.git",
                "ref": "v2",
                "path": "tests/api",
                "secretName": "git-creds",
            }
        }
    )
    spec = pod(cj)
    (init,) = spec["initContainers"]
    assert init["image"] == runner(cj)["image"]
    assert init["args"] == ["git-clone"]
    init_env = {v["name"]: v["value"] for v in init["env"]}
    assert init_env["TEP_GIT_URL"] == "https://host/org/repo.git"
    assert init_env["TEP_GIT_REF"] == "v2"
    assert init_env["TEP_GIT_DEST"] == "/workspace/src"
    assert init["securityContext"]["readOnlyRootFilesystem"] is True
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["git-credentials"]["secret"]["secretName"] == "git-creds"
    init_mounts = {m["name"]: m for m in init["volumeMounts"]}
    assert init_mounts["git-credentials"]["readOnly"] is True
    runner_mounts = {m["name"] for m in runner(cj)["volumeMounts"]}
    assert "git-credentials" not in runner_mounts  # the tests never see the credentials
    # pytest runs in source.git.path; the checkout is the source root its configuration is found from.
    assert env(cj)["TEP_TESTS_DIR"] == "/workspace/src/tests/api"
    assert env(cj)["TEP_SOURCE_ROOT"] == "/workspace/src"


def test_git_source_without_secret() -> None:
    spec = pod(render(source={"git": {"url": "https://host/public.git"}}))
    assert "git-credentials" not in {v["name"] for v in spec["volumes"]}
    assert (
        env(render(source={"git": {"url": "https://host/public.git"}}))["TEP_TESTS_DIR"] == "/workspace/src"
    )


def test_config_file_and_root_dir() -> None:
    e = env(render(pytest={"configFile": "ci/pytest.ini", "rootDir": "."}))
    assert (e["TEP_PYTEST_CONFIG_FILE"], e["TEP_PYTEST_ROOT_DIR"]) == ("ci/pytest.ini", ".")


def test_image_source() -> None:
    cj = render(source={"image": {"path": "/app/tests"}}, image="org/app-tests:3")
    assert env(cj)["TEP_TESTS_DIR"] == env(cj)["TEP_SOURCE_ROOT"] == "/app/tests"
    assert "tests" not in {v["name"] for v in pod(cj)["volumes"]}
    assert "initContainers" not in pod(cj)


def test_pod_template_overlay() -> None:
    overlay = {
        "metadata": {"labels": {"team": "qa", "tep.dev/plan": "hijack"}, "annotations": {"note": "x"}},
        "nodeSelector": {"pool": "tests"},
        "tolerations": [{"key": "tests", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {}},
        "imagePullSecrets": [{"name": "regcred"}],
        "securityContext": {"runAsUser": 2000, "supplementalGroups": [5]},
    }
    cj = render(podTemplate=overlay, serviceAccountName="tests-sa")
    spec = pod(cj)
    assert spec["nodeSelector"] == {"pool": "tests"}
    assert spec["tolerations"] == overlay["tolerations"]
    assert spec["affinity"] == {"nodeAffinity": {}}
    assert spec["imagePullSecrets"] == [{"name": "regcred"}]
    assert spec["securityContext"]["runAsUser"] == 2000 and spec["securityContext"]["supplementalGroups"] == [
        5
    ]
    assert spec["securityContext"]["runAsNonRoot"] is True  # the rest of the defaults stay
    assert spec["serviceAccountName"] == "tests-sa"
    assert spec["automountServiceAccountToken"] is False  # even with a service account
    meta = cj["spec"]["jobTemplate"]["spec"]["template"]["metadata"]
    assert meta["labels"]["team"] == "qa"
    assert meta["labels"]["tep.dev/plan"] == "smoke"  # ours cannot be overridden
    assert meta["annotations"] == {"note": "x", "tep.dev/plan-name": "smoke"}


def test_manual_job_shares_the_template() -> None:
    plan = read_plan(body())
    cj = render_cronjob(plan, CONFIG)
    job = render_manual_job(plan, CONFIG, "2026-11-21T19:42:00Z", "20261121T194200Z-m1")
    assert job["kind"] == "Job"
    assert job["metadata"]["name"] == names.manual_job_name("smoke", "2026-11-21T19:42:00Z")
    assert job["metadata"]["labels"]["tep.dev/trigger"] == "manual"
    assert job["metadata"]["annotations"]["tep.dev/run-requested-at"] == "2026-11-21T19:42:00Z"
    assert job["metadata"]["ownerReferences"] == cj["metadata"]["ownerReferences"]
    assert job["spec"]["ttlSecondsAfterFinished"] == 86400
    scheduled_pod = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    manual_pod = job["spec"]["template"]["spec"]
    manual_env = manual_pod["containers"][0]["env"]
    assert {"name": "TEP_RUN_ID", "value": "20261121T194200Z-m1"} in manual_env
    manual_pod["containers"][0]["env"] = [v for v in manual_env if v["name"] != "TEP_RUN_ID"]
    assert manual_pod == scheduled_pod
    # the same request value gives the same Job name; another value another name
    assert (
        render_manual_job(plan, CONFIG, "2026-11-21T19:42:00Z", "x")["metadata"]["name"]
        == job["metadata"]["name"]
    )
    assert render_manual_job(plan, CONFIG, "later", "x")["metadata"]["name"] != job["metadata"]["name"]


def test_drift_ignores_server_defaults_but_sees_hand_edits() -> None:
    desired = render()
    live = {**desired, "status": {}, "metadata": {**desired["metadata"], "uid": "u", "resourceVersion": "9"}}
    live["spec"] = {**desired["spec"], "timeZone": None}
    assert not drifted(desired, live)
    edited = {**live, "spec": {**live["spec"], "suspend": True}}
    assert drifted(desired, edited)
    removed = {**live, "spec": {k: v for k, v in live["spec"].items() if k != "startingDeadlineSeconds"}}
    assert drifted(desired, removed)


def test_the_spec_hash_tells_a_changed_rendering() -> None:
    first = render()
    assert len(first["metadata"]["annotations"]["tep.dev/spec-hash"]) == 16
    assert same_spec(render(), first)  # stable
    assert not same_spec(render(crontab="0 6 * * *"), first)
    assert not same_spec(render(env=[{"name": "A", "value": "1"}]), first)
    assert not same_spec(render(), {"metadata": {"annotations": {}}})


def test_the_runner_knows_the_deadline_and_the_per_test_timeout() -> None:
    e = env(render(activeDeadlineSeconds=30, pytest={"timeoutSeconds": 20}))
    assert (e["TEP_ACTIVE_DEADLINE_SECONDS"], e["TEP_TIMEOUT_SECONDS"]) == ("30", "20")
    assert "TEP_TIMEOUT_SECONDS" not in env(render())  # unset: the suite's own pytest-timeout setting
    assert env(render())["TEP_ACTIVE_DEADLINE_SECONDS"] == "3600"
