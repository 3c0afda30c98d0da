"""The merged pytest-html report of a sharded run (htmlreport.py), from real pytest-html reports."""

import re
import subprocess
import sys
import textwrap

from tep_runner.htmlreport import ShardReport, merge, parse, reruns_from_junit

SUITE = textwrap.dedent(
    """
    import os, pytest

    def test_ok(): pass
    def test_fail(): assert 0
    def test_flaky(tmp_path_factory):
        flag = os.path.join(os.environ["FLAGS"], "flaky")
        if not os.path.exists(flag):
            open(flag, "w").close()
            assert 0, "first attempt"
    def test_always_fails_after_reruns(): assert 0, "every time"
    @pytest.mark.xfail
    def test_xfail(): assert 0
    def test_skip(): pytest.skip("no")
    """
)


def shard_report(tmp_path, index, selection):
    out = tmp_path / f"shard-{index}"
    out.mkdir()
    flags = tmp_path / "flags"
    flags.mkdir(exist_ok=True)
    command = [
        sys.executable, "-m", "pytest", ".", "-k", selection, "-p", "no:cacheprovider", "--reruns", "2",
        "--html", str(out / "report.html"), "--self-contained-html", "--junitxml", str(out / "junit.xml"),
        "-o", "junit_family=xunit1",
    ]  # fmt: skip
    subprocess.run(
        command, cwd=tmp_path, env={"FLAGS": str(flags), "PATH": "/usr/bin:/bin"}, capture_output=True
    )
    return ShardReport(
        index, (out / "report.html").read_text(), reruns_from_junit((out / "junit.xml").read_text())
    )


def counts(page_html):
    return {
        key: int(n)
        for key, n in re.findall(r'data-test-result="(\w+)"[^>]*>\s*<span class="\w+">(\d+) ', page_html)
    }


def test_merged_report_has_every_shards_rows_a_shard_column_and_correct_totals(tmp_path):
    (tmp_path / "test_suite.py").write_text(SUITE)
    shards = [
        shard_report(tmp_path, 0, "ok or test_fail or xfail"),
        shard_report(tmp_path, 1, "flaky or always or skip"),
    ]
    assert shards[1].reruns == {
        "test_suite.py::test_flaky": 1,
        "test_suite.py::test_always_fails_after_reruns": 2,
    }
    merged = merge(shards, 75.0, ["4 shards"])
    page = parse(merged)
    tests = page.data["tests"]
    assert set(tests) == {
        f"test_suite.py::test_{n}"
        for n in ("ok", "fail", "flaky", "always_fails_after_reruns", "xfail", "skip")
    }
    assert page.head[3] == '<th class="sortable" data-column-type="shard">Shard</th>'
    assert [row["shard"] for row in tests["test_suite.py::test_ok"]] == ["0"]
    assert '<td class="col-shard">1</td>' in tests["test_suite.py::test_skip"][0]["resultsTableRow"]
    assert all(len(row["resultsTableRow"]) == len(page.head) for rows in tests.values() for row in rows)
    # One rerun row per rerun (pytest-html itself repeats them), then the final result.
    assert [r["result"] for r in tests["test_suite.py::test_flaky"]] == ["Rerun", "Passed"]
    assert [r["result"] for r in tests["test_suite.py::test_always_fails_after_reruns"]] == [
        "Rerun",
        "Rerun",
        "Failed",
    ]
    assert "(flaky)" in tests["test_suite.py::test_flaky"][-1]["resultsTableRow"][0]
    assert [r["result"] for r in tests["test_suite.py::test_fail"]] == ["Rerun", "Rerun", "Failed"]
    # pytest's own line: 2 failed, 2 passed, 1 skipped, 1 xfailed, 5 rerun.
    assert counts(merged) == {
        "failed": 2, "passed": 2, "skipped": 1, "xfailed": 1, "xpassed": 0, "error": 0, "rerun": 5,
        "retried": 0,
    }  # fmt: skip
    assert "5 tests took 00:01:15." in merged  # pytest-html counts passed, failed, xfailed, xpassed
    assert "1 flaky (failed, then passed on a rerun): test_suite.py::test_flaky" in merged
    assert "<p>4 shards</p>" in merged
    # Self-contained and real: pytest-html's own script and style, nothing loaded from elsewhere.
    assert "<script>" in merged and "manager.setManager" in merged and "<style" in merged
    assert not re.search(r"<(link|script)[^>]+(href|src)=", merged)


def test_a_collection_error_every_shard_reports_is_kept_once(tmp_path):
    (tmp_path / "test_suite.py").write_text("def test_ok(): pass\n")
    (tmp_path / "test_broken.py").write_text("raise ImportError('broken')\n")
    shards = [shard_report(tmp_path, i, "ok") for i in range(2)]
    page = parse(merge(shards, 1.0))
    assert [r["result"] for r in page.data["tests"]["test_broken.py"]] == ["Error"]
    assert list(page.data["tests"]) == ["test_broken.py"]  # pytest stops at a collection error
