import pytest

from tep_runner.record import END, line, read_record
from tep_runner.summary import Counts, counts_from_record, outcome, summarize

# Shaped as tep_runner.plugin writes it from pytest 9's terminal reporter under xdist with --reruns 1: a
# failure followed by a teardown error is one report in each list; a flaky test is in "rerun" and "passed".
RECORD = {
    "reports": {
        "passed": ["test_a.py::test_ok", "test_a.py::test_flaky"],
        "rerun": ["test_a.py::test_flaky", "test_a.py::test_broken"],
        "failed": ["test_a.py::test_broken", "sub/test_b.py::TestLogin::test_expired_token[admin]"],
        "error": ["sub/test_b.py::TestLogin::test_expired_token[admin]", "sub/test_b.py::test_db"],
        "skipped": ["sub/test_b.py::test_later"],
        "xfailed": ["sub/test_b.py::test_xfail"],
        "xpassed": ["sub/test_b.py::test_xpass"],
        "deselected": ["sub/test_b.py::test_slow"],
    },
    "collectionErrors": {},
    "collected": 8,
    "collectOnly": False,
    "interrupted": "",
    "maxfail": 0,
    "workers": 2,
    "rootdir": "/src",
    "configFile": "/src/pyproject.toml",
}


def test_counts_are_pytests_final_line_and_total_counts_each_test_once():
    counts = counts_from_record(RECORD)
    assert (counts.passed, counts.failed, counts.errors, counts.skipped, counts.xfailed, counts.xpassed) == (
        2, 2, 2, 1, 1, 1,
    )  # fmt: skip
    assert (counts.total, counts.flaky, counts.reruns, counts.collected) == (8, 1, 2, 8)
    assert counts.failed_tests == (
        "test_a.py::test_broken",
        "sub/test_b.py::TestLogin::test_expired_token[admin]",
        "sub/test_b.py::test_db",
    )


def test_collection_error_is_an_error_of_the_run():
    traceback = (
        "pkg/test_bad.py:1: in <module>\n    import nope\nE   ModuleNotFoundError: No module named 'nope'"
    )
    record = RECORD | {
        "reports": {"error": ["pkg/test_bad.py"]},
        "collectionErrors": {"pkg/test_bad.py": traceback},
    }
    counts = counts_from_record(record)
    assert (counts.errors, counts.failed_tests, counts.collection_errors) == (
        1,
        ("pkg/test_bad.py",),
        ("pkg/test_bad.py",),
    )
    assert outcome(1, counts, record, "", {}) == (
        "Error",
        "collection errors in pkg/test_bad.py: E   ModuleNotFoundError: No module named 'nope'",
    )


def test_a_conftest_below_that_does_not_import_is_named():
    traceback = (
        "<frozen importlib._bootstrap>:690: in _load_unlocked\n    ???\n"
        "sub/conftest.py:1: in <module>\n    raise RuntimeError('no db')\nE   RuntimeError: no db"
    )
    record = RECORD | {"reports": {"error": ["sub"]}, "collectionErrors": {"sub": traceback}}
    assert outcome(1, counts_from_record(record), record, "", {}) == (
        "Error",
        "collection errors in sub: conftest sub/conftest.py failed to import: E   RuntimeError: no db",
    )


CONFTEST_LOG = """ImportError while loading conftest '/tests/conftest.py'.
/tests/conftest.py:1: in <module>
    import no_such_module
E   ModuleNotFoundError: No module named 'no_such_module'
"""


@pytest.mark.parametrize(
    ("code", "counts", "record", "log", "split", "expected"),
    [
        (0, Counts(passed=3), {}, "", {}, ("Passed", "")),
        (1, Counts(passed=2, failed=1), {}, "", {}, ("Failed", "")),
        (1, Counts(errors=1), {}, "", {}, ("Failed", "")),
        (0, Counts(collected=7), {"collectOnly": True}, "", {}, ("Passed",
         "--collect-only: 7 tests collected, none ran")),
        (2, Counts(failed=1), {"maxfail": 1, "interrupted": "stopping after 1 failures"}, "", {}, ("Failed",
         "stopping after 1 failures (-x/--maxfail=1)")),
        (2, Counts(failed=1), {"maxfail": 2, "interrupted": "KeyboardInterrupt"}, "", {}, ("Error",
         "interrupted")),
        (5, Counts(), {}, "", {"selected": 3, "mine": 0}, ("Passed",
         "no tests in this shard's share of the 3 tests")),
        (5, Counts(), {}, "\nno tests ran in 0.01s\n", {}, ("Error",
         "no tests collected: no tests ran in 0.01s")),
        (4, Counts(), None, CONFTEST_LOG, {}, ("Error", "conftest /tests/conftest.py failed to import: "
         "E   ModuleNotFoundError: No module named 'no_such_module'")),
        (4, Counts(), None, "ERROR: usage\npytest: error: unrecognized arguments: --x\n  rootdir: /t\n", {},
         ("Error", "pytest usage error: pytest: error: unrecognized arguments: --x")),
        (2, Counts(passed=1), {}, "", {}, ("Error", "interrupted")),
        (3, Counts(), None, "INTERNALERROR> ValueError: boom\nINTERNALERROR> end", {}, ("Error",
         "pytest internal error: INTERNALERROR> ValueError: boom")),
        (-9, Counts(), None, "", {}, ("Error", "pytest was killed by signal 9")),
        (1, Counts(), {}, "", {}, ("Error", "pytest exited with 1")),
    ],
)  # fmt: skip
def test_outcome(code, counts, record, log, split, expected):
    assert outcome(code, counts, record, log, split) == expected


def test_summary_document():
    summary = summarize(
        record=read_record([line(END, **RECORD)]),
        split={},
        log_text="",
        exit_code=1,
        duration_seconds=3.14159,
        shard=0,
        shards=1,
        report_path="qa/demo/r1/report.html",
        run_id="r1",
        start_time="2026-11-21T19:42:00+00:00",
    )
    assert summary["result"] == "Failed" and "reason" not in summary
    assert (summary["total"], summary["failed"], summary["xfailed"], summary["xpassed"]) == (8, 2, 1, 1)
    assert (summary["flaky"], summary["workers"], summary["durationSeconds"]) == (1, 2, 3.142)
    assert (summary["rootdir"], summary["configFile"]) == ("/src", "/src/pyproject.toml")
    assert summary["failedTests"][0] == "test_a.py::test_broken"


def test_a_run_without_a_record_has_no_counts():
    summary = summarize(
        record=read_record([]),
        split={},
        log_text="",
        exit_code=-9,
        duration_seconds=1.0,
        shard=0,
        shards=1,
        report_path="qa/demo/r1/pytest.log",
        run_id="r1",
        start_time="2026-11-21T19:42:00+00:00",
    )
    assert (summary["result"], summary["total"], summary["reason"]) == (
        "Error",
        0,
        "pytest was killed by signal 9",
    )
    assert "rootdir" not in summary
