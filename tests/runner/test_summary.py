import pytest

from tep_runner.summary import Counts, counts_from_junit, nodeid, outcome, summarize, workers_from_log

# Shaped as pytest 9 + xdist + pytest-rerunfailures write it with junit_family=xunit1 and --reruns 1: each
# rerun attempt leaves an extra, empty <testcase>; a failure followed by a teardown error leaves two; an
# interrupted run leaves a nameless <testcase/> for the test it stopped.
JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests">
<testsuite name="pytest" errors="1" failures="2" skipped="2" tests="8" time="2.1">
<testcase classname="test_a" name="test_ok" file="test_a.py" line="1" time="0.001"/>
<testcase classname="test_a" name="test_flaky" file="test_a.py" line="4" time="0.001"/>
<testcase classname="test_a" name="test_broken" file="test_a.py" line="7" time="0.001"/>
<testcase classname="test_a" name="test_flaky" file="test_a.py" line="4" time="0.001"/>
<testcase classname="test_a" name="test_broken" file="test_a.py" line="7" time="0.001">
  <failure message="assert 0">E assert 0</failure></testcase>
<testcase classname="sub.test_b.TestLogin" name="test_expired_token[admin]" file="sub/test_b.py" line="3">
  <failure message="boom">E boom</failure></testcase>
<testcase classname="sub.test_b.TestLogin" name="test_expired_token[admin]" file="sub/test_b.py" line="3">
  <error message="failed on teardown">E teardown</error></testcase>
<testcase classname="sub.test_b" name="test_db" file="sub/test_b.py" line="9">
  <error message="failed on setup with &quot;boom&quot;">E setup</error></testcase>
<testcase classname="sub.test_b" name="test_later" file="sub/test_b.py" line="12">
  <skipped type="pytest.skip" message="later">sub/test_b.py:12: later</skipped></testcase>
<testcase classname="sub.test_b" name="test_xfail" file="sub/test_b.py" line="15">
  <skipped type="pytest.xfail" message="known"/></testcase>
<testcase time="0.000" />
</testsuite></testsuites>"""


def test_counts_with_reruns_and_teardown_errors():
    counts = counts_from_junit(JUNIT)
    assert (counts.total, counts.passed, counts.failed, counts.errors, counts.skipped, counts.flaky) == (
        7, 2, 2, 1, 2, 1,
    )  # fmt: skip
    assert counts.failed_tests == (
        "test_a.py::test_broken",
        "sub/test_b.py::TestLogin::test_expired_token[admin]",
        "sub/test_b.py::test_db",
    )
    assert counts.collection_errors == ()


def test_collection_error_is_an_error_of_the_run():
    junit = """<testsuites><testsuite name="pytest" errors="1" failures="0" skipped="0" tests="1">
    <testcase classname="" name="pkg.test_bad" file="pkg/test_bad.py" time="0.000">
    <error message="collection failure">ImportError</error></testcase></testsuite></testsuites>"""
    counts = counts_from_junit(junit)
    assert (counts.errors, counts.failed_tests, counts.collection_errors) == (
        1,
        ("pkg/test_bad.py",),
        ("pkg/test_bad.py",),
    )
    assert outcome(1, counts, "") == ("Error", "collection errors in pkg/test_bad.py")


@pytest.mark.parametrize(
    ("file", "classname", "name", "expected"),
    [
        ("test_login.py", "test_login", "test_expired_token", "test_login.py::test_expired_token"),
        (
            "a.b/test_x.py",
            "a.b.test_x.TestK.TestInner",
            "test_m[1.5]",
            "a.b/test_x.py::TestK::TestInner::test_m[1.5]",
        ),
        ("", "mod", "test_n", "mod::test_n"),
    ],
)
def test_nodeid(file, classname, name, expected):
    assert nodeid(file, classname, name) == expected


@pytest.mark.parametrize(
    ("code", "counts", "log", "expected"),
    [
        (0, Counts(passed=3), "", ("Passed", "")),
        (1, Counts(passed=2, failed=1), "", ("Failed", "")),
        (1, Counts(errors=1), "", ("Failed", "")),
        (5, Counts(), "\nno tests ran in 0.01s\n", ("Error", "no tests collected: no tests ran in 0.01s")),
        (4, Counts(), "ERROR: usage\npytest: error: unrecognized arguments: --x\n  rootdir: /t\n", ("Error",
         "pytest usage error: pytest: error: unrecognized arguments: --x")),
        (2, Counts(passed=1), "", ("Error", "interrupted")),
        (3, Counts(), "INTERNALERROR> ValueError: boom\nINTERNALERROR> end", ("Error",
         "pytest internal error: INTERNALERROR> ValueError: boom")),
        (-9, Counts(), "", ("Error", "pytest was killed by signal 9")),
        (1, Counts(), "", ("Error", "pytest exited with 1")),
    ],
)  # fmt: skip
def test_outcome(code, counts, log, expected):
    assert outcome(code, counts, log) == expected


def test_workers_line_from_the_plugin():
    assert workers_from_log("created: 4/4 workers\n...\ntep-runner: 3 workers used\n== 9 passed ==\n") == 3
    assert workers_from_log("no tests ran\n") == 0


def test_summary_document():
    summary = summarize(
        junit_xml=JUNIT,
        log_text="tep-runner: 2 workers used\n",
        exit_code=1,
        duration_seconds=3.14159,
        shard=0,
        shards=1,
        report_path="qa/demo/r1/report.html",
        run_id="r1",
        start_time="2026-11-21T19:42:00+00:00",
    )
    assert summary["result"] == "Failed" and "reason" not in summary
    assert (summary["total"], summary["failed"], summary["flaky"], summary["workers"]) == (7, 2, 1, 2)
    assert summary["durationSeconds"] == 3.142
    assert summary["failedTests"][0] == "test_a.py::test_broken"
