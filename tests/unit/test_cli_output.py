from pathlib import Path

from tep_operator.cli import format_table, status_rows
from tep_operator.local import prepare, summary_text


def test_status_shows_expected_failures_and_unexpected_passes_apart():
    plan = {
        "metadata": {"name": "smoke", "namespace": "qa"},
        "spec": {"crontab": "*/30 * * * *", "enabled": True},
        "status": {
            "phase": "Scheduled",
            "nextRunTime": "2026-11-21T20:00:00Z",
            "lastRun": {
                "result": "Passed",
                "passed": 6,
                "failed": 0,
                "xfailed": 2,
                "xpassed": 1,
                "skipped": 0,
            },
        },
    }
    header, row = status_rows([plan], all_namespaces=False)
    assert dict(zip(header, row, strict=True)) == {
        "NAME": "smoke", "SCHEDULE": "*/30 * * * *", "ENABLED": "true", "PHASE": "Scheduled",
        "LAST RESULT": "Passed", "PASSED": "6", "FAILED": "0", "XFAILED": "2", "XPASSED": "1",
        "WORKERS": "-", "CPU": "-", "IMBALANCE": "-", "NEXT RUN": "2026-11-21T20:00:00Z",
    }  # fmt: skip
    assert format_table([header, row]).splitlines()[0].startswith("NAME ")


def test_status_shows_the_last_runs_workers_cpu_use_and_shard_imbalance():
    last = {"result": "Passed", "workers": 4, "shards": 4, "cpuUtilization": 0.153, "imbalance": 1.04}
    plan = {"metadata": {"name": "api"}, "spec": {"crontab": "@daily"}, "status": {"lastRun": last}}
    header, row = status_rows([plan], all_namespaces=False)
    shown = dict(zip(header, row, strict=True))
    assert (shown["WORKERS"], shown["CPU"], shown["IMBALANCE"]) == ("4", "15%", "1.04")


def test_a_local_run_that_ran_nothing_says_why_not_zero_tests():
    reason = "--collect-only: 6 tests collected, none ran"
    message = {"result": "Passed", "total": 0, "reason": reason, "durationSeconds": 0.4, "workers": 0}
    assert summary_text(message, Path("/r")) == f"tep: Passed: {reason} in 0.4s with 0 workers"
    counted = {"result": "Failed", "total": 3, "passed": 1, "failed": 1, "xfailed": 1, "reason": "stopping"}
    assert summary_text(counted, Path("/r")).splitlines() == [
        "tep: Failed: 3 tests, 1 passed, 1 failed, 0 errors, 0 skipped, 1 xfailed, 0 xpassed, 0 flaky "
        "in 0.0s with 0 workers",
        "tep: reason: stopping",
    ]


def test_a_local_git_plan_runs_pytest_in_its_path_inside_the_checkout(tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "apiVersion: tep.dev/v1alpha1\nkind: TestPlan\nmetadata: {name: api}\n"
        "spec: {crontab: '@hourly', source: {git: {url: 'https://host/repo.git', path: tests/api}},"
        " pytest: {configFile: ci/pytest.ini}}\n"
    )
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    local = prepare(plan, checkout, tmp_path / "reports", {}, tmp_path / "message")
    env = local.environ
    assert (env["TEP_SOURCE_ROOT"], env["TEP_TESTS_DIR"]) == (str(checkout), f"{checkout}/tests/api")
    assert env["TEP_PYTEST_CONFIG_FILE"] == "ci/pytest.ini"
