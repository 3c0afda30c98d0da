"""Reading and validating TestPlans: defaults, and every invalid input with its message."""

import copy
from typing import Any

import pytest

from tep_operator.plan import PlanError, cpu_workers, crontab_problem, parse_cpu, read_plan


def plan_body(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "tep.dev/v1alpha1",
        "kind": "TestPlan",
        "metadata": {"name": "smoke", "namespace": "qa", "uid": "uid-1", "generation": 3},
        "spec": {"crontab": "*/30 * * * *", "source": {"configMap": {"name": "smoke-tests"}}},
    }
    body["spec"].update(spec)
    return body


def problems(body: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(PlanError) as info:
        read_plan(body)
    return {p.field: p.message for p in info.value.problems}


def test_defaults_match_the_design() -> None:
    plan = read_plan(plan_body())
    assert (plan.name, plan.namespace, plan.uid, plan.generation) == ("smoke", "qa", "uid-1", 3)
    assert plan.enabled is True
    assert plan.workers == "auto" and plan.dist == "" and plan.reruns == 0
    assert plan.shards == 1
    assert plan.active_deadline_seconds == 3600
    assert plan.concurrency_policy == "Forbid"
    assert plan.starting_deadline_seconds == 300
    assert (plan.keep_last, plan.max_age_days, plan.history_limit) == (20, 7, 10)
    assert plan.source.kind == "configMap" and plan.source.name == "smoke-tests"


def test_every_field_is_read() -> None:
    body = plan_body(
        timeZone="Asia/Shanghai",
        enabled=False,
        env=[
            {"name": "TEP_ENV", "value": "qa"},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        ],
        envFrom=[{"configMapRef": {"name": "settings"}}],
        image="registry.example/tests:1",
        pytest={"args": ["-k", "not slow"], "workers": 4, "dist": "loadfile", "reruns": 2},
        shards=3,
        resources={"limits": {"cpu": "1500m"}},
        activeDeadlineSeconds=600,
        concurrencyPolicy="Replace",
        startingDeadlineSeconds=60,
        reports={"claimName": "qa-reports", "keepLast": 5, "maxAgeDays": 2},
        historyLimit=4,
        serviceAccountName="tests",
        podTemplate={"nodeSelector": {"pool": "tests"}},
    )
    body["metadata"]["annotations"] = {"tep.dev/run-requested-at": "2026-11-21T19:42:00Z"}
    plan = read_plan(body)
    assert plan.time_zone == "Asia/Shanghai" and plan.enabled is False
    assert [v["name"] for v in plan.env] == ["TEP_ENV", "TOKEN"]
    assert plan.env_from == ({"configMapRef": {"name": "settings"}},)
    assert plan.image == "registry.example/tests:1"
    assert (
        plan.args == ("-k", "not slow")
        and plan.workers == "4"
        and plan.dist == "loadfile"
        and plan.reruns == 2
    )
    assert plan.shards == 3 and plan.resources == {"limits": {"cpu": "1500m"}}
    assert (plan.active_deadline_seconds, plan.concurrency_policy, plan.starting_deadline_seconds) == (
        600,
        "Replace",
        60,
    )
    assert (plan.claim_name, plan.keep_last, plan.max_age_days, plan.history_limit) == ("qa-reports", 5, 2, 4)
    assert plan.service_account_name == "tests" and plan.pod_template == {"nodeSelector": {"pool": "tests"}}
    assert plan.run_requested_at == "2026-11-21T19:42:00Z"


@pytest.mark.parametrize(
    "crontab",
    [
        "*/30 * * * *",
        "0 9 * * 1-5",
        "0 0 1 jan,jul *",
        "15 3 ? * MON-FRI",
        "@hourly",
        "@daily",
        "@weekly",
        "@monthly",
        "@yearly",
        "0 0 * * 7",
    ],
)
def test_crontabs_kubernetes_accepts(crontab: str) -> None:
    assert crontab_problem(crontab) is None
    assert read_plan(plan_body(crontab=crontab)).crontab == crontab


@pytest.mark.parametrize(
    ("crontab", "expected"),
    [
        ("", "must not be empty"),
        ("0 */5 * * * *", "6 fields; Kubernetes takes 5"),  # a seconds field
        ("0 0 */5 * * * 2026", "7 fields"),
        ("* * *", "3 fields"),
        ("61 * * * *", "not a valid cron expression"),
        ("* 25 * * *", "not a valid cron expression"),
        ("* * 32 * *", "not a valid cron expression"),
        ("0 0 L * *", "day-of-month field 'L'"),
        ("0 0 * * 5#3", "day-of-week field '5#3'"),
        ("H * * * *", "minute field 'H'"),
        ("@reboot", "is not one of @yearly"),
        ("@every 5m", "is not one of"),
        ("TZ=UTC 0 9 * * *", "use spec.timeZone"),
        ("CRON_TZ=Asia/Tokyo 0 9 * * *", "use spec.timeZone"),
        ("every day", "2 fields"),
    ],
)
def test_crontabs_kubernetes_rejects(crontab: str, expected: str) -> None:
    found = problems(plan_body(crontab=crontab))
    assert expected in found["spec.crontab"]
    with pytest.raises(PlanError) as info:
        read_plan(plan_body(crontab=crontab))
    assert info.value.reason == "InvalidCrontab"
    assert str(info.value).startswith("spec.crontab: ")


def test_missing_crontab() -> None:
    body = plan_body()
    del body["spec"]["crontab"]
    assert problems(body) == {"spec.crontab": "is required"}


@pytest.mark.parametrize("zone", ["Mars/Olympus", "Local", "UTC+8", "../../etc/passwd"])
def test_unknown_time_zone(zone: str) -> None:
    with pytest.raises(PlanError) as info:
        read_plan(plan_body(timeZone=zone))
    assert info.value.reason == "InvalidTimeZone"
    assert "spec.timeZone" in str(info.value) and "not a known IANA time zone" in str(info.value)


@pytest.mark.parametrize(
    ("source", "field", "expected"),
    [
        ({}, "spec.source", "exactly one of configMap, git, image (found: none)"),
        (
            {"configMap": {"name": "a"}, "git": {"url": "https://x/y.git"}},
            "spec.source",
            "(found: configMap, git)",
        ),
        ({"configMap": {}}, "spec.source.configMap.name", "is required"),
        ({"git": {"ref": "main"}}, "spec.source.git.url", "is required"),
        ({"git": {"url": "https://x/y.git", "path": "../escape"}}, "spec.source.git.path", "relative path"),
        ({"image": {"path": "relative/tests"}}, "spec.source.image.path", "absolute path"),
    ],
)
def test_bad_sources(source: dict[str, Any], field: str, expected: str) -> None:
    assert expected in problems(plan_body(source=source))[field]


@pytest.mark.parametrize("key", ["configFile", "rootDir"])
@pytest.mark.parametrize("path", ["/etc/pytest.ini", "../pytest.ini", "ci/../../x"])
def test_pytest_paths_stay_inside_the_source(key: str, path: str) -> None:
    assert (
        "must be a relative path inside the source"
        in problems(plan_body(pytest={key: path}))[f"spec.pytest.{key}"]
    )


def test_pytest_paths() -> None:
    plan = read_plan(plan_body(pytest={"configFile": "ci/pytest.toml", "rootDir": "src"}))
    assert (plan.config_file, plan.root_dir) == ("ci/pytest.toml", "src")
    assert (read_plan(plan_body()).config_file, read_plan(plan_body()).root_dir) == ("", "")


def test_image_source_needs_an_image() -> None:
    assert (
        "image that holds the tests"
        in problems(plan_body(source={"image": {"path": "/app/tests"}}))["spec.image"]
    )
    plan = read_plan(plan_body(source={"image": {"path": "/app/tests"}}, image="org/tests:1"))
    assert plan.source.kind == "image" and plan.source.path == "/app/tests"


def test_git_source_defaults() -> None:
    plan = read_plan(plan_body(source={"git": {"url": "https://host/org/repo.git", "secretName": "creds"}}))
    assert (plan.source.url, plan.source.ref, plan.source.path, plan.source.secret_name) == (
        "https://host/org/repo.git",
        "main",
        ".",
        "creds",
    )


@pytest.mark.parametrize("workers", [0, -2, "many", "2.5", True, "0"])
def test_bad_workers(workers: object) -> None:
    with pytest.raises(PlanError) as info:
        read_plan(plan_body(pytest={"workers": workers}))
    assert info.value.reason == "InvalidWorkers"
    assert 'spec.pytest.workers: must be "auto", "adaptive" or a whole number >= 1' in str(info.value)


def test_adaptive_workers_max_workers_and_order() -> None:
    plan = read_plan(plan_body(pytest={"workers": "adaptive", "maxWorkers": 6, "order": "collection"}))
    assert (plan.workers, plan.max_workers, plan.order) == ("adaptive", 6, "collection")
    assert (read_plan(plan_body()).order, read_plan(plan_body()).max_workers) == ("duration", None)
    with pytest.raises(PlanError, match=r"spec.pytest.maxWorkers: applies only with workers: \"adaptive\""):
        read_plan(plan_body(pytest={"workers": 2, "maxWorkers": 6}))
    with pytest.raises(PlanError, match=r"spec\.pytest\.order: 'fastest' is not one of duration, collection"):
        read_plan(plan_body(pytest={"order": "fastest"}))


@pytest.mark.parametrize("workers", [1, 8, "3", "auto"])
def test_good_workers(workers: object) -> None:
    assert read_plan(plan_body(pytest={"workers": workers})).workers == str(workers)


@pytest.mark.parametrize(
    ("spec", "field", "expected"),
    [
        ({"shards": 0}, "spec.shards", "must be between 1 and 100, not 0"),
        ({"shards": 101}, "spec.shards", "between 1 and 100"),
        ({"pytest": {"reruns": -1}}, "spec.pytest.reruns", "between 0 and 10"),
        ({"pytest": {"reruns": 11}}, "spec.pytest.reruns", "between 0 and 10"),
        ({"activeDeadlineSeconds": 0}, "spec.activeDeadlineSeconds", "at least 1"),
        ({"pytest": {"timeoutSeconds": 0}}, "spec.pytest.timeoutSeconds", "at least 1"),
        ({"pytest": {"timeoutSeconds": "1m"}}, "spec.pytest.timeoutSeconds", "must be a whole number"),
        ({"startingDeadlineSeconds": 5}, "spec.startingDeadlineSeconds", "at least 10"),
        ({"reports": {"keepLast": 0}}, "spec.reports.keepLast", "at least 1"),
        ({"reports": {"maxAgeDays": 0}}, "spec.reports.maxAgeDays", "at least 1"),
        ({"historyLimit": 101}, "spec.historyLimit", "between 0 and 100"),
        ({"historyLimit": "ten"}, "spec.historyLimit", "must be a whole number, not 'ten'"),
        ({"enabled": "yes"}, "spec.enabled", "must be true or false"),
        ({"pytest": {"dist": "random"}}, "spec.pytest.dist", "'random' is not one of load, loadscope"),
        (
            {"concurrencyPolicy": "Queue"},
            "spec.concurrencyPolicy",
            "'Queue' is not one of Forbid, Replace, Allow",
        ),
        ({"pytest": {"args": "-k smoke"}}, "spec.pytest.args", "must be a list of strings"),
        ({"env": [{"value": "x"}]}, "spec.env[0].name", "is required"),
        ({"env": [{"name": "TEP_PLAN", "value": "x"}]}, "spec.env[0].name", "set by the operator"),
        ({"env": "A=1"}, "spec.env", "must be a list of objects"),
        ({"resources": {"limits": {"cpu": "lots"}}}, "spec.resources.limits.cpu", "not a CPU quantity"),
        ({"podTemplate": ["x"]}, "spec.podTemplate", "must be an object"),
    ],
)
def test_out_of_range_and_malformed_fields(spec: dict[str, Any], field: str, expected: str) -> None:
    assert expected in problems(plan_body(**spec))[field]


def test_all_problems_are_reported_together() -> None:
    body = plan_body(crontab="61 * * * *", timeZone="Nowhere/City", shards=0)
    found = problems(body)
    assert set(found) == {"spec.crontab", "spec.timeZone", "spec.shards"}


def test_missing_spec() -> None:
    assert problems({"metadata": {"name": "x"}}) == {"spec": "is required"}


def test_reading_does_not_change_the_input() -> None:
    body = plan_body(pytest={"workers": 2})
    before = copy.deepcopy(body)
    read_plan(body)
    assert body == before


@pytest.mark.parametrize(
    ("quantity", "cores", "workers"),
    [("500m", 0.5, 1), ("2", 2.0, 2), ("1.5", 1.5, 2), (3, 3.0, 3), ("2500m", 2.5, 3), ("100m", 0.1, 1)],
)
def test_cpu_limits_size_the_workers(quantity: object, cores: float, workers: int) -> None:
    assert parse_cpu(quantity) == pytest.approx(cores)
    assert cpu_workers({"limits": {"cpu": quantity}}) == workers


def test_no_cpu_limit_means_xdist_decides() -> None:
    assert cpu_workers({}) is None
    assert cpu_workers({"requests": {"cpu": "2"}}) is None
