"""One story (issue 8, item 5): summary.json, the termination message, junit.xml and report.html count what
pytest's own final line counts, on real suites, compared with bare pytest on the same suite."""

import html
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from tep_runner import history
from tep_runner.htmlreport import parse
from tests.runner.conftest import OUTCOMES_PLUGIN, final_line, outcome_env

OUTCOMES = ("passed", "failed", "errors", "skipped", "xfailed", "xpassed")
EVERY_OUTCOME = {
    "test_kinds.py": """
        import pytest

        def test_ok():
            pass

        def test_wrong():
            assert 1 + 1 == 3

        def test_later():
            pytest.skip("later")

        @pytest.mark.xfail(reason="known bug")
        def test_known_bug():
            raise AssertionError

        @pytest.mark.xfail(reason="fixed meanwhile")
        def test_fixed_meanwhile():
            pass

        @pytest.fixture
        def broken():
            raise RuntimeError("no database")

        def test_needs_db(broken):
            pass
    """,
}
CRASH = {
    "test_crash.py": """
        import os

        def test_before():
            pass

        def test_kills_its_process():
            os._exit(3)

        def test_after():
            pass
    """,
}


def junit_counts(path) -> dict[str, int]:
    suites = ET.parse(path).getroot().iter("testsuite")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in suites:
        for key in totals:
            totals[key] += int(suite.get(key, 0))
    return totals


def junit_cases(path) -> list[ET.Element]:
    return list(ET.parse(path).getroot().iter("testcase"))


def html_counts(path) -> dict[str, int]:
    """pytest-html's own summary counts ("3 Failed," ...), as the page shows them."""
    found = re.findall(r'<span class="(\w+)">(\d+) [^<]*</span>', path.read_text())
    counts: dict[str, int] = {}
    for name, number in found:
        counts.setdefault(name, int(number))
    return counts


def assert_one_story(result, final: dict[str, int], junit: dict[str, int] | None = None) -> None:
    """The summary matches `final` (pytest's final line); message, JUnit and HTML match the summary.

    `junit`: the JUnit counts expected when a test or a file has more than one outcome (a test's failed
    subtests, a file both of whose collectors skipped), where the testsuite counts reports, not tests."""
    summary = result.summary()
    assert {key: summary[key] for key in final} == final, result.output
    assert all(summary[key] == 0 for key in OUTCOMES if key not in final), summary
    assert {key: result.message[key] for key in (*OUTCOMES, "total")} == {
        key: summary[key] for key in (*OUTCOMES, "total")
    }
    own = final_line((result.run_dir / "pytest.log").read_text())  # the runner's own pytest agrees too
    assert {key: summary[key] for key in own if key in OUTCOMES} == {
        k: v for k, v in own.items() if k in OUTCOMES
    }
    assert len(junit_cases(result.run_dir / "junit.xml")) == summary["total"]
    assert junit_counts(result.run_dir / "junit.xml") == (junit or {
        "tests": summary["total"],
        "failures": summary["failed"],
        "errors": summary["errors"],
        "skipped": summary["skipped"] + summary["xfailed"],  # JUnit has no xfail: pytest files it as skipped
    })  # fmt: skip
    page = html_counts(result.run_dir / "report.html")
    assert {key: page[key] for key in ("passed", "failed", "skipped", "xfailed", "xpassed", "error")} == {
        "passed": summary["passed"],
        "failed": summary["failed"],
        "skipped": summary["skipped"],
        "xfailed": summary["xfailed"],
        "xpassed": summary["xpassed"],
        "error": summary["errors"],
    }, page


def test_every_outcome_has_its_own_count(write_suite, bare_pytest, run_runner):
    suite = write_suite("suite", EVERY_OUTCOME)
    bare = bare_pytest(suite)
    assert bare.final == {"failed": 1, "passed": 1, "skipped": 1, "xfailed": 1, "xpassed": 1, "errors": 1}
    result = run_runner(suite)
    assert (result.code, result.message["result"]) == (1, "Failed")
    assert_one_story(result, bare.final)
    assert sorted(result.message["failedTests"]) == [
        "test_kinds.py::test_needs_db",
        "test_kinds.py::test_wrong",
    ]
    # The history (the report browser's grid) files each test under the final line's word, xpassed too.
    (record,) = history.read_records(result.run_dir.parent)
    assert {test: found[0] for test, found in record["tests"].items()} == {
        "test_kinds.py::test_ok": "passed",
        "test_kinds.py::test_wrong": "failed",
        "test_kinds.py::test_later": "skipped",
        "test_kinds.py::test_known_bug": "xfailed",
        "test_kinds.py::test_fixed_meanwhile": "xpassed",
        "test_kinds.py::test_needs_db": "error",
    }


def test_a_test_that_kills_its_worker_is_failed_everywhere(write_suite, bare_pytest, run_runner):
    suite = write_suite("suite", CRASH)
    bare = bare_pytest(suite, "-n", "2")  # in one process, bare pytest dies with the test: no final line
    assert bare.final == {"failed": 1, "passed": 2}
    result = run_runner(suite)
    assert (result.code, result.message["result"]) == (1, "Failed"), result.output
    assert result.message["failedTests"] == ["test_crash.py::test_kills_its_process"]
    assert_one_story(result, bare.final)
    failure = ET.parse(result.run_dir / "junit.xml").getroot().find(".//testcase/failure")
    assert failure is not None and "crashed while running" in failure.get("message", "")


def test_dist_no_keeps_the_other_results_when_a_test_kills_its_process(write_suite, run_runner):
    result = run_runner(write_suite("suite", CRASH), TEP_DIST="no")
    # One worker at a time; xdist replaces the one the test killed, and the run goes on.
    assert (result.code, result.message["result"]) == (1, "Failed"), result.output
    assert_one_story(result, {"failed": 1, "passed": 2})


def test_stopping_at_the_first_failure_is_failed_not_error(write_suite, bare_pytest, run_runner):
    suite = write_suite("suite", {"test_x.py": "def test_bad():\n    assert 0\n\ndef test_ok():\n    pass\n"})
    bare = bare_pytest(suite, "-x")
    assert (bare.code, bare.final["failed"]) == (1, 1)
    result = run_runner(suite, TEP_PYTEST_ARGS='["-x"]', TEP_WORKERS="1")
    assert (result.code, result.message["result"]) == (1, "Failed"), result.output
    assert result.message["reason"] == "stopping after 1 failures (-x/--maxfail=1)"
    assert_one_story(result, {"failed": 1})


def test_the_plans_junit_options_cannot_bend_the_verdict(write_suite, bare_pytest, run_runner):
    # xunit2 drops the file attribute the old counting needed; the suite's addopts name another JUnit file.
    suite = write_suite("suite", {
        "pytest.ini": "[pytest]\naddopts = --junitxml=elsewhere.xml\njunit_family = xunit1\n",
        "pkg/test_orders.py": """
            class TestOrders:
                def test_total(self):
                    assert 2 + 2 == 5

                def test_count(self):
                    pass
        """,
    })  # fmt: skip
    bare = bare_pytest(suite, *OUTCOMES_PLUGIN, "-o", "junit_family=xunit2")
    args = ["-o", "junit_family=xunit2", "-o", "junit_logging=all"]
    result = run_runner(
        suite, TEP_PYTEST_ARGS=json.dumps([*args, *OUTCOMES_PLUGIN]), **outcome_env(suite, "r")
    )
    assert result.message["failedTests"] == ["pkg/test_orders.py::TestOrders::test_total"]
    assert [k for k, v in bare.outcomes.items() if "failed" in v] == result.message["failedTests"]
    assert_one_story(result, bare.final)
    assert (result.run_dir / "junit.xml").is_file()


def test_a_conftest_that_does_not_import_is_named(write_suite, bare_pytest, run_runner):
    suite = write_suite(
        "suite", {"conftest.py": "import no_such_module\n", "test_a.py": "def test_a():\n    pass\n"}
    )
    bare = bare_pytest(suite)
    assert bare.code == 4 and f"ImportError while loading conftest '{suite / 'conftest.py'}'." in bare.output
    result = run_runner(suite)
    assert (result.code, result.message["result"]) == (2, "Error")
    assert result.message["reason"] == (
        f"conftest {suite / 'conftest.py'} failed to import: "
        "E   ModuleNotFoundError: No module named 'no_such_module'"
    )


def test_collect_only_says_what_was_collected_and_that_nothing_ran(write_suite, bare_pytest, run_runner):
    suite = write_suite("suite", EVERY_OUTCOME)
    bare = bare_pytest(suite, "--collect-only", "-q")
    assert bare.final == {"collected": 6}
    result = run_runner(suite, TEP_PYTEST_ARGS='["--collect-only"]')
    assert (result.code, result.message["result"], result.message["total"]) == (0, "Passed", 0)
    assert result.message["reason"] == "--collect-only: 6 tests collected, none ran"
    assert result.summary()["collected"] == 6


def test_a_conftest_below_that_does_not_import_is_named(write_suite, bare_pytest, run_runner):
    suite = write_suite("suite", {
        "test_a.py": "def test_a():\n    pass\n",
        "db/conftest.py": "raise RuntimeError('no database')\n",
        "db/test_b.py": "def test_b():\n    pass\n",
    })  # fmt: skip
    bare = bare_pytest(suite)
    assert bare.final == {"errors": 1}  # pytest stops at a collection error
    result = run_runner(suite)
    assert (result.code, result.message["result"]) == (2, "Error")
    assert result.message["reason"] == (
        "collection errors in db: conftest db/conftest.py failed to import: E   RuntimeError: no database"
    )
    assert_one_story(result, bare.final)


# A collection-time skip ends a file's collector, not a test: pytest counts it in its final line. With
# --doctest-modules a file has two collectors (its tests, its doctests), and a skip at import ends both.
MODULE_SKIPS = {
    "pytest.ini": "[pytest]\naddopts = --doctest-modules\n",
    "test_needs_c.py": """
        import pytest

        pytest.importorskip("no_such_extension")

        def test_fast():
            pass
    """,
    "test_later.py": """
        import pytest

        pytest.skip("not on this platform", allow_module_level=True)

        def test_x():
            pass
    """,
    "test_ok.py": """
        def test_ok():
            '''
            >>> 1 + 1
            2
            '''
    """,
}


def test_a_module_level_skip_counts_as_bare_pytest_counts_it(write_suite, bare_pytest, run_runner, tmp_path):
    suite = write_suite("suite", MODULE_SKIPS)
    bare = bare_pytest(suite, "-rs", f"--junitxml={tmp_path / 'bare.xml'}")
    # Each skipped file twice (xdist's own -n 2 says 2 skipped: it keeps one report per skip text).
    assert bare.final == {"passed": 2, "skipped": 4}
    assert bare.outcomes["test_later.py"] == bare.outcomes["test_needs_c.py"] == ["skipped", "skipped"]
    assert junit_counts(tmp_path / "bare.xml") == {"tests": 6, "failures": 0, "errors": 0, "skipped": 4}
    args = json.dumps(["-rs", *OUTCOMES_PLUGIN])
    result = run_runner(suite, TEP_PYTEST_ARGS=args, **outcome_env(tmp_path, "runner"))  # two workers
    assert (result.code, result.message["result"]) == (0, "Passed"), result.output
    assert json.loads((tmp_path / "outcomes-runner.json").read_text()) == bare.outcomes
    assert_one_story(result, bare.final, junit=junit_counts(tmp_path / "bare.xml"))
    assert result.summary()["total"] == 4  # the two tests and the two files, each once
    skips = [line for line in bare.output.splitlines() if line.startswith("SKIPPED")]
    assert "SKIPPED [2] test_later.py:4: not on this platform" in skips
    own = (result.run_dir / "pytest.log").read_text().splitlines()
    assert skips == [line for line in own if line.startswith("SKIPPED")]


def two_shards(suite, runner_env, tmp_path) -> tuple[list[int], Path]:
    """Both shards of a run of `suite`, as two pods would run them: their exit codes and the run's folder."""
    shards = []
    for index in range(2):  # every shard collects the whole suite
        env = runner_env(suite, TEP_SHARDS="2", TEP_SHARD_INDEX=str(index), TEP_JOB_NAME="demo-29400000")
        env["TEP_TERMINATION_LOG"] = str(tmp_path / f"message-{index}")
        shards.append(subprocess.Popen([sys.executable, "-m", "tep_runner"], env=os.environ | env))
    codes = sorted(shard.wait(timeout=120) for shard in shards)
    return codes, tmp_path / "reports" / "qa" / "demo" / "20251124T160000Z-29400000"


def test_two_shards_count_a_module_level_skip_once(write_suite, bare_pytest, runner_env, tmp_path):
    suite = write_suite("suite", MODULE_SKIPS)
    bare = bare_pytest(suite, f"--junitxml={tmp_path / 'bare.xml'}")
    codes, run_dir = two_shards(suite, runner_env, tmp_path)
    assert codes == [0, 0]
    run = json.loads((run_dir / "summary.json").read_text())
    assert {key: run[key] for key in bare.final} == bare.final == {"passed": 2, "skipped": 4}
    assert junit_counts(run_dir / "junit.xml") == junit_counts(tmp_path / "bare.xml")
    page = html_counts(run_dir / "report.html")
    assert (page["passed"], page["skipped"]) == (2, 4)


def test_two_shards_count_a_collection_error_once(write_suite, bare_pytest, runner_env, tmp_path):
    suite = write_suite("suite", {
        "test_broken.py": "import no_such_module\n",
        "test_ok.py": "def test_a():\n    pass\n\n\ndef test_b():\n    pass\n",
    })  # fmt: skip
    bare = bare_pytest(suite, f"--junitxml={tmp_path / 'bare.xml'}")
    assert bare.final == {"errors": 1}  # pytest stops at a collection error: nothing ran
    codes, run_dir = two_shards(suite, runner_env, tmp_path)
    assert codes == [2, 2]
    run = json.loads((run_dir / "summary.json").read_text())
    assert (run["result"], run["total"], run["errors"], run["passed"]) == ("Error", 1, 1, 0), run
    assert run["failedTests"] == ["test_broken.py"]
    assert run["reason"].startswith("shards 0, 1: collection errors in test_broken.py"), run["reason"]
    assert junit_counts(run_dir / "junit.xml") == junit_counts(tmp_path / "bare.xml")
    assert html_counts(run_dir / "report.html")["error"] == 1


def test_a_file_whose_two_collectors_fail_is_two_errors(write_suite, bare_pytest, run_runner):
    suite = write_suite("suite", {
        "pytest.ini": "[pytest]\naddopts = --doctest-modules\n",
        "test_broken.py": "import no_such_module\n",
        "test_ok.py": "def test_ok():\n    pass\n",
    })  # fmt: skip
    bare = bare_pytest(suite)
    assert bare.final == {"errors": 2}
    result = run_runner(suite)
    assert (result.code, result.message["result"]) == (2, "Error"), result.output
    assert_one_story(result, bare.final, junit={"tests": 2, "failures": 0, "errors": 2, "skipped": 0})


SUBTESTS = {
    "test_sub.py": """
        import unittest

        class TestTable(unittest.TestCase):
            def test_rows(self):
                for i in range(4):
                    with self.subTest(i=i):
                        self.assertLess(i, 2)

            def test_all_pass(self):
                for i in range(3):
                    with self.subTest(i=i):
                        pass

            def test_one_skipped(self):
                for i in range(2):
                    with self.subTest(i=i):
                        if i:
                            self.skipTest("no data")

        def test_native(subtests):
            for i in range(3):
                with subtests.test(i=i):
                    assert i != 1
    """,
}


def failures(path) -> list[tuple[str, str]]:
    return [
        (case.get("name", ""), failure.get("message", ""))
        for case in junit_cases(path)
        for failure in case.iter("failure")
    ]


def test_subtests_are_in_every_artifact_as_in_the_final_line(write_suite, bare_pytest, run_runner, tmp_path):
    suite = write_suite("suite", SUBTESTS)
    bare = bare_pytest(suite, f"--junitxml={tmp_path / 'bare.xml'}")
    # pytest 9 counts each failed subtest, and a test with failed subtests (but a unittest one) itself; the
    # passed and the skipped subtests it does not count, at the default verbosity.
    assert bare.final == {"failed": 4, "passed": 3}
    # Its JUnit XML counts every subtest report (16) and files the skipped subtest as a skip.
    assert junit_counts(tmp_path / "bare.xml") == {"tests": 16, "failures": 4, "errors": 0, "skipped": 1}
    result = run_runner(suite)
    assert (result.code, result.message["result"]) == (1, "Failed"), result.output
    # One testcase per test; its counts are the final line's, each counted failure is a <failure> of its test.
    assert_one_story(result, bare.final, junit={"tests": 7, "failures": 4, "errors": 0, "skipped": 0})
    assert failures(result.run_dir / "junit.xml") == failures(tmp_path / "bare.xml")
    assert [case.find("skipped") for case in junit_cases(result.run_dir / "junit.xml")] == [None] * 4
    assert result.message["failedTests"] == ["test_sub.py::TestTable::test_rows", "test_sub.py::test_native"]
    # report.html: a row for each subtest failure, named as pytest's SUBFAILED line names it, and the test's.
    tests = parse((result.run_dir / "report.html").read_text()).data["tests"]
    rows = tests["test_sub.py::TestTable::test_rows"]
    assert [(row["result"], html.unescape(row["testId"])) for row in rows] == [
        ("Failed", "test_sub.py::TestTable::test_rows (i='2')"),  # xdist hands the values on as text
        ("Failed", "test_sub.py::TestTable::test_rows (i='3')"),
        ("Passed", "test_sub.py::TestTable::test_rows"),  # a unittest test, judged apart from its subtests
    ]


def test_verbose_subtests_are_counted_as_the_final_line_counts_them(write_suite, bare_pytest, run_runner):
    suite = write_suite("suite", SUBTESTS)
    bare = bare_pytest(suite, "-v")
    assert bare.final == {"failed": 4, "passed": 3, "skipped": 1, "subtests passed": 8}
    result = run_runner(suite, TEP_PYTEST_ARGS='["-v"]')
    final = {key: n for key, n in bare.final.items() if key in OUTCOMES}  # summary.json has no subtests key
    assert_one_story(result, final, junit={"tests": 8, "failures": 4, "errors": 0, "skipped": 1})
