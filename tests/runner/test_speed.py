"""Faster runs on real suites: the order and the shard split come from a history planted on the volume.

The history is written with the runner's own functions (history.build_record, history.dumps), as a finished
run would leave it; the runs are real pytest runs through tep_runner.run, read back from their files.
"""

import json
import subprocess
import sys
from pathlib import Path

from tep_runner import history
from tep_runner.balance import lpt
from tep_runner.htmlreport import parse

SHORT = [f"test_a.py::test_short_{i}" for i in range(6)]
LONG = ["test_z.py::test_long_0", "test_z.py::test_long_1"]  # collected last
RECORDED = {**dict.fromkeys(SHORT, 0.05), **dict.fromkeys(LONG, 5.0)}

CONFTEST = """
import os

import pytest


@pytest.fixture(autouse=True)
def _started(request):
    with open(os.environ["STARTED_LOG"], "a") as log:
        log.write(f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')} {request.node.nodeid}\\n")
"""


def suite(write_suite):
    shorts = "".join(f"def test_short_{i}():\n    time.sleep(0.05)\n\n" for i in range(6))
    longs = "".join(f"def test_long_{i}():\n    time.sleep(0.3)\n\n" for i in range(2))
    return write_suite(
        "suite",
        {
            "pytest.ini": "[pytest]\n",
            "conftest.py": CONFTEST,
            "test_a.py": "import time\n\n" + shorts,
            "test_z.py": "import time\n\n" + longs,
        },
    )


def plant_history(reports: Path, seconds: dict[str, float], **measured: float) -> None:
    plan_dir = reports / "qa" / "demo"
    plan_dir.mkdir(parents=True)
    summary = {
        "runId": "20260101T000000Z-planted",
        "startTime": "2026-01-01T00:00:00+00:00",
        "result": "Passed",
        **measured,
    }
    tests = {test: history.Result(history.PASSED, s, "") for test, s in seconds.items()}
    (plan_dir / history.FILE).write_text(history.dumps([history.build_record(summary, tests, "local")]))


def first_per_worker(log: Path) -> dict[str, str]:
    first: dict[str, str] = {}
    for line in log.read_text().splitlines():
        worker, test = line.split(" ", 1)
        first.setdefault(worker, test)
    return first


def test_recorded_durations_start_the_long_tests_first_on_every_worker(tmp_path, write_suite, run_runner):
    tests = suite(write_suite)
    plant_history(tmp_path / "reports", RECORDED)
    log = tmp_path / "started.log"
    outcome = run_runner(tests, TEP_WORKERS="2", TEP_DIST="load", STARTED_LOG=str(log))
    assert outcome.code == 0, outcome.output
    assert outcome.message["total"] == 8
    assert sorted(first_per_worker(log).values()) == LONG  # each worker's first test is a long one
    # The plugin got the durations the runner read from the history.
    assert "--tep-durations=" in outcome.output and "--tep-order=duration" in outcome.output


def test_order_collection_keeps_pytests_order(tmp_path, write_suite, run_runner):
    tests = suite(write_suite)
    plant_history(tmp_path / "reports", RECORDED)
    log = tmp_path / "started.log"
    outcome = run_runner(tests, TEP_WORKERS="2", TEP_ORDER="collection", STARTED_LOG=str(log))
    assert outcome.code == 0, outcome.output
    assert not set(first_per_worker(log).values()) & set(LONG)


def test_without_history_the_collection_order_is_kept(tmp_path, write_suite, run_runner):
    tests = suite(write_suite)
    log = tmp_path / "started.log"
    outcome = run_runner(tests, TEP_WORKERS="2", STARTED_LOG=str(log))
    assert outcome.code == 0, outcome.output
    assert "--tep-durations=" not in outcome.output
    assert not set(first_per_worker(log).values()) & set(LONG)


def test_shards_split_by_recorded_duration_and_merge_into_one_report(tmp_path, write_suite, run_runner):
    tests = suite(write_suite)
    # Round-robin over the sorted ids would give both long tests to shard 0 of 2 (positions 0 and 2 of
    # test_z's ids after test_a's six): the recorded durations put one on each.
    plant_history(tmp_path / "reports", RECORDED)
    shares = lpt(SHORT + LONG, RECORDED, 2)
    assert all(len(set(share) & set(LONG)) == 1 for share in shares)
    outcomes = [
        run_runner(
            tests,
            TEP_SHARDS="2",
            TEP_SHARD_INDEX=str(i),
            TEP_RUN_ID="r1",
            STARTED_LOG=str(tmp_path / "s.log"),
        )
        for i in range(2)
    ]
    run_dir = tmp_path / "reports" / "qa" / "demo" / "r1"
    for i, share in enumerate(shares):
        ran = history.tests_from_junit((run_dir / f"shard-{i}" / "junit.xml").read_text())
        assert sorted(ran) == sorted(share)
    assert all(o.code == 0 for o in outcomes)
    run = json.loads((run_dir / "summary.json").read_text())
    assert (run["total"], run["shards"]) == (8, 2)
    assert 1.0 <= run["imbalance"] < 2.0
    assert run["cpuUtilization"] >= 0 and run["peakMemoryPerWorker"] > 0
    # The merged report: every test once, with the shard that ran it.
    page = parse((run_dir / "report.html").read_text())
    shard_of = {test: rows[-1]["shard"] for test, rows in page.data["tests"].items()}
    assert shard_of == {test: str(i) for i, share in enumerate(shares) for test in share}
    # The history now has the merged run: each test's duration from whichever shard ran it.
    record = history.read_records(tmp_path / "reports" / "qa" / "demo")[-1]
    assert set(record["tests"]) == set(RECORDED) and record["imbalance"] == run["imbalance"]


def test_adaptive_workers_start_at_the_cpu_limit_and_say_why(tmp_path, write_suite, run_runner):
    tests = suite(write_suite)
    outcome = run_runner(tests, TEP_WORKERS="adaptive", STARTED_LOG=str(tmp_path / "s.log"))
    assert outcome.code == 0, outcome.output
    assert "workers: adaptive: " in outcome.output and "no measured run yet: the CPU limit" in outcome.output
    summary = outcome.summary()
    assert summary["cpuUtilization"] >= 0 and summary["peakMemoryPerWorker"] > 0
    assert outcome.message["cpuUtilization"] == summary["cpuUtilization"]
    record = history.read_records(outcome.plan_dir)[-1]
    assert record["cpuUtilization"] == summary["cpuUtilization"]


def test_adaptive_workers_raise_after_an_io_bound_run(tmp_path, write_suite, run_runner):
    tests = suite(write_suite)
    plant_history(tmp_path / "reports", RECORDED, workers=2, cpuUtilization=0.1, durationSeconds=10.0)
    outcome = run_runner(
        tests, TEP_WORKERS="adaptive", TEP_MAX_WORKERS="3", STARTED_LOG=str(tmp_path / "s.log")
    )
    assert outcome.code == 0, outcome.output
    assert "I/O-bound, raised" in outcome.output and "at most 3 (maxWorkers)" in outcome.output
    assert "--numprocesses=3" in outcome.output
    assert outcome.summary()["workers"] == 3


def test_local_run_with_shards_runs_them_in_parallel_and_merges(tmp_path, write_suite):
    tests = suite(write_suite)
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "apiVersion: tep.dev/v1alpha1\nkind: TestPlan\nmetadata: {name: sharded}\n"
        "spec: {crontab: '@daily', shards: 3, source: {configMap: {name: t}}, pytest: {workers: 1}}\n"
    )
    tep = str(Path(sys.executable).with_name("tep"))
    done = subprocess.run(
        [tep, "run", "--local", "-f", str(plan), "--tests", str(tests), "--reports", str(tmp_path / "r")],
        capture_output=True, text=True, timeout=300,
        env={"STARTED_LOG": str(tmp_path / "s.log"), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "tep: Passed: 8 tests, 8 passed" in done.stdout
    run = (tmp_path / "r" / "default" / "sharded" / "latest").resolve()
    assert sorted(p.name for p in run.iterdir() if p.name.startswith("shard-")) == [
        "shard-0",
        "shard-1",
        "shard-2",
    ]
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["shards"], summary["total"]) == (3, 8) and "imbalance" in summary
    assert len(parse((run / "report.html").read_text()).data["tests"]) == 8
