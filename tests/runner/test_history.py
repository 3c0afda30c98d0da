"""The history format's pure functions, and the history a real run writes."""

# ruff: noqa: E501  (JUnit XML lines)

import json
from datetime import UTC, datetime, timedelta

from tep_runner import history
from tep_runner.settings import settings_from_env

JUNIT = """<testsuites><testsuite name="pytest">
<testcase classname="test_a" name="test_ok" file="test_a.py" time="0.5"/>
<testcase classname="test_a" name="test_flaky" file="test_a.py" time="0.1"/>
<testcase classname="test_a" name="test_flaky" file="test_a.py" time="0.2"><failure message="boom"/></testcase>
<testcase classname="test_a" name="test_rerun" file="test_a.py" time="0.1"/>
<testcase classname="test_a" name="test_rerun" file="test_a.py" time="0.1"/>
<testcase classname="test_a" name="test_flaky" file="test_a.py" time="0.3"/>
<testcase classname="test_a.TestK" name="test_bad" file="test_a.py" time="1"><failure message="no">x</failure></testcase>
<testcase classname="test_a" name="test_err" file="test_a.py" time="0"><error message="fixture broke"/></testcase>
<testcase classname="test_a" name="test_skip" file="test_a.py" time="0"><skipped message="later"/></testcase>
<testcase classname="test_a" name="test_xf" file="test_a.py" time="0"><skipped type="pytest.xfail" message="known"/></testcase>
<testcase classname="test_a" name="test_xp" file="test_a.py" time="0"><properties><property name="tep.outcome" value="xpassed"/></properties></testcase>
<testcase classname="" name="" time="0"/>
</testsuite></testsuites>"""


def test_tests_from_junit_groups_reruns():
    tests = history.tests_from_junit(JUNIT)
    assert {k: v.outcome for k, v in tests.items()} == {
        "test_a.py::test_ok": "passed",
        "test_a.py::test_flaky": "flaky",
        "test_a.py::test_rerun": "flaky",
        "test_a.py::TestK::test_bad": "failed",
        "test_a.py::test_err": "error",
        "test_a.py::test_skip": "skipped",
        "test_a.py::test_xf": "xfailed",
        "test_a.py::test_xp": "xpassed",
    }
    assert tests["test_a.py::test_flaky"].seconds == 0.6
    assert tests["test_a.py::test_flaky"].message == "boom"
    assert tests["test_a.py::TestK::test_bad"].message == "no"


def test_build_record_reads_a_summary_tolerantly_and_marks_timed_out_tests():
    summary = {"runId": "r1", "startTime": "2026-01-01T00:00:00+00:00", "result": "Error", "passed": 1,
               "timedOut": ["test_a.py::test_hang"]}  # fmt: skip
    record = history.build_record(summary, history.tests_from_junit(JUNIT), history.TRIGGER_LOCAL)
    assert record["counts"] == {k: 1 if k == "passed" else 0 for k in history.COUNTS}
    assert record["tests"]["test_a.py::test_hang"] == ["failed", 0.0]
    assert record["tests"]["test_a.py::test_ok"] == ["passed", 0.5]
    assert history.parse(history.dumps([record])) == [record]
    assert "cpuUtilization" not in record


def test_build_record_keeps_the_runs_measures():
    summary = {"runId": "r1", "result": "Passed", "cpuUtilization": 0.25, "peakMemoryPerWorker": 1 << 26,
               "imbalance": 1.04, "workers": 4}  # fmt: skip
    record = history.build_record(summary, {}, history.TRIGGER_LOCAL)
    assert (record["cpuUtilization"], record["peakMemoryPerWorker"], record["imbalance"]) == (
        0.25,
        1 << 26,
        1.04,
    )


def test_append_replaces_the_same_run_and_trims_by_count_and_age():
    now = datetime(2026, 6, 1, tzinfo=UTC)

    def rec(i, age_days):
        return {
            "v": 1,
            "runId": f"r{i}",
            "startTime": (now - timedelta(days=age_days, minutes=i)).isoformat(),
        }

    old = [rec(i, 1) for i in range(history.MAX_RUNS)] + [rec(9999, history.MAX_AGE_DAYS + 1)]
    kept = history.append(old, rec(-1, 0) | {"x": 1}, now)
    assert len(kept) == history.MAX_RUNS
    assert kept[-1]["runId"] == "r-1" and "r9999" not in {r["runId"] for r in kept}
    assert kept[0]["runId"] == f"r{history.MAX_RUNS - 2}"  # the oldest one fell off
    again = history.append(kept, rec(-1, 0) | {"x": 2}, now)
    assert [r["runId"] for r in again] == [r["runId"] for r in kept] and again[-1]["x"] == 2


def test_trigger():
    assert history.trigger_of("", "") == "local"
    assert history.trigger_of("smoke-29400000", "") == "schedule"
    assert history.trigger_of("smoke-mab12cd34", "20261121T194200Z-mab12cd34") == "manual"


def test_a_real_run_writes_one_record(run_runner, write_suite):
    suite = write_suite("s", {"test_x.py": "def test_ok():\n    pass\n\ndef test_no():\n    assert 0\n"})
    first = run_runner(suite, TEP_JOB_NAME="demo-29400000")
    failed = first.summary()["failed"]
    run_runner(suite, TEP_JOB_NAME="demo-29400001")
    records = history.read_records(first.plan_dir)
    assert [r["runId"] for r in records] == ["20251124T160000Z-29400000", "20251124T160100Z-29400001"]
    assert records[0]["result"] == "Failed" and records[0]["trigger"] == "schedule"
    assert records[0]["tests"].keys() == {"test_x.py::test_ok", "test_x.py::test_no"}
    assert records[0]["tests"]["test_x.py::test_no"][0] == "failed"
    assert records[0]["counts"]["failed"] == 1 == failed


def _write(plan_dir, run_id, start, result="Passed"):
    """history.write_run of a run folder holding only a summary.json."""
    run_dir = plan_dir / run_id
    run_dir.mkdir(exist_ok=True)
    (run_dir / "summary.json").write_text(json.dumps({"runId": run_id, "startTime": start, "result": result}))
    env = {
        "TEP_NAMESPACE": "qa",
        "TEP_PLAN": "p",
        "TEP_TESTS_DIR": str(plan_dir),
        "TEP_REPORTS_DIR": str(plan_dir),
    }
    said = []
    history.write_run(plan_dir, run_dir, settings_from_env(env), said.append)
    assert said == []


def test_write_run_appends_and_rewrites_within_the_bounds_only_when_the_file_is_full(tmp_path):
    now = datetime.now(UTC)
    file = tmp_path / history.FILE

    def start(i):
        return (now - timedelta(minutes=1000 - i)).isoformat()

    _write(tmp_path, "r0000", start(0))
    first = file.read_bytes()
    _write(tmp_path, "r0001", start(1))
    assert file.read_bytes().startswith(first)  # appended: the earlier line is left as it was
    for i in range(2, history.MAX_RUNS + history.SLACK):
        _write(tmp_path, f"r{i:04d}", start(i))
    assert file.read_text().count("\n") == history.MAX_RUNS + history.SLACK  # full, and never more
    assert len(history.read_records(tmp_path)) == history.MAX_RUNS  # readers see the bounds already
    _write(tmp_path, "new", now.isoformat())
    lines = file.read_text().splitlines()
    assert len(lines) == history.MAX_RUNS  # rewritten within the bounds
    assert [r["runId"] for r in history.parse(file.read_text())] == [
        r["runId"] for r in history.read_records(tmp_path)
    ]
    assert json.loads(lines[-1])["runId"] == "new"


def test_a_run_written_again_replaces_its_record_and_a_cut_line_is_skipped(tmp_path):
    now = datetime.now(UTC)
    _write(tmp_path, "r1", (now - timedelta(minutes=2)).isoformat())
    with (tmp_path / history.FILE).open("a") as f:
        f.write('{"v": 1, "runId": "cut sh')  # a crash in the middle of an append
    _write(tmp_path, "r2", (now - timedelta(minutes=1)).isoformat())
    _write(tmp_path, "r1", (now - timedelta(minutes=2)).isoformat(), result="Failed")  # the merge, again
    records = history.read_records(tmp_path)
    assert [(r["runId"], r["result"]) for r in records] == [("r1", "Failed"), ("r2", "Passed")]
