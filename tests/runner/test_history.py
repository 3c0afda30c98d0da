"""The history format's pure functions, and the history a real run writes."""

# ruff: noqa: E501  (JUnit XML lines)

from datetime import UTC, datetime, timedelta

from tep_runner import history

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
