import xml.etree.ElementTree as ET

from tep_runner.balance import share
from tep_runner.shards import COUNTS, index_html, merge_junit, merge_summaries

IDS = [f"test_{f}.py::test_{i}" for f in "cab" for i in range(7)]


def test_split_without_history_is_complete_disjoint_fair_and_order_independent():
    parts = [share(IDS, {}, 3, i) for i in range(3)]
    assert sorted(i for part in parts for i in part) == sorted(IDS)
    assert {len(p) for p in parts} == {7}
    assert [set(p) for p in parts] == [set(share(list(reversed(IDS)), {}, 3, i)) for i in range(3)]


def test_more_shards_than_tests():
    assert [share(["a::t"], {}, 3, i) for i in range(3)] == [["a::t"], [], []]


def junit(*cases):
    body = "".join(cases)
    return f'<testsuites><testsuite name="pytest" tests="{len(cases)}">{body}</testsuite></testsuites>'


def test_merge_junit_keeps_every_testcase():
    a = junit('<testcase classname="test_a" name="t1" file="test_a.py"/>')
    b = junit(
        '<testcase classname="test_b" name="t2" file="test_b.py"><failure message="x"/></testcase>',
        '<testcase classname="test_b" name="t3" file="test_b.py"/>',
    )
    merged = ET.fromstring(merge_junit([a, b]))
    assert len(merged.findall("testsuite")) == 2
    assert [c.get("name") for c in merged.iter("testcase")] == ["t1", "t2", "t3"]
    assert len(merged.findall(".//failure")) == 1


def test_merge_junit_keeps_a_collection_error_every_shard_reported_once():
    error = (
        '<testcase classname="" name="test_broken" file="test_broken.py">'
        '<error message="collection failure"/></testcase>'
    )
    shard_junit = (
        f'<testsuites><testsuite name="pytest" tests="1" errors="1">{error}</testsuite></testsuites>'
    )
    merged = ET.fromstring(merge_junit([shard_junit, shard_junit]))
    assert [c.get("name") for c in merged.iter("testcase")] == ["test_broken"]
    assert [(s.get("tests"), s.get("errors")) for s in merged.findall("testsuite")] == [
        ("1", "1"),
        ("0", "0"),
    ]


def shard(i, result, **counts):
    base = dict.fromkeys(COUNTS, 0) | {"workers": 2}
    return base | counts | {
        "result": result, "shard": i, "shards": 2, "durationSeconds": 10.0 + i, "runId": "r1",
        "startTime": f"2026-11-21T19:42:0{i}+00:00", "failedTests": [f"t{i}.py::x"] * counts.get("failed", 0),
    }  # fmt: skip


def test_merge_summaries():
    run = merge_summaries(
        [shard(0, "Passed", total=5, passed=5), shard(1, "Failed", total=4, passed=3, failed=1)], "p"
    )
    assert (run["result"], run["total"], run["passed"], run["failed"], run["workers"]) == (
        "Failed",
        9,
        8,
        1,
        4,
    )
    assert run["imbalance"] == round(11.0 / 10.5, 3)  # durations 10 s and 11 s
    assert "cpuUtilization" not in run  # not measured
    measured = merge_summaries(
        [shard(0, "Passed") | {"cpuUtilization": 0.2, "peakMemoryPerWorker": 5},
         shard(1, "Passed") | {"cpuUtilization": 0.4, "peakMemoryPerWorker": 7}], "p",
    )  # fmt: skip
    assert (measured["cpuUtilization"], measured["peakMemoryPerWorker"]) == (0.3, 7)
    assert (run["durationSeconds"], run["shards"], run["failedTests"], run["reportPath"]) == (
        11.0,
        2,
        ["t1.py::x"],
        "p",
    )
    assert run["startTime"] == "2026-11-21T19:42:00+00:00"
    assert "reason" not in run  # a passing shard's note (an empty share) is no reason of a failed run
    xfails = merge_summaries([shard(0, "Passed", xfailed=2), shard(1, "Passed", xfailed=1, xpassed=1)], "p")
    assert (xfails["xfailed"], xfails["xpassed"]) == (3, 1)
    collection = [
        shard(i, "Error") | {"total": 1, "errors": 1, "failedTests": ["t.py"], "reason": "why"}
        for i in range(2)
    ]
    once = merge_summaries(collection, "p")
    assert (once["total"], once["errors"], once["failedTests"], once["reason"]) == (
        1,
        1,
        ["t.py"],
        "shards 0, 1: why",
    )
    broken = merge_summaries(
        [shard(0, "Failed", failed=1), shard(1, "Error") | {"reason": "no tests collected"}], "p"
    )
    assert (broken["result"], broken["reason"]) == ("Error", "shard 1: no tests collected")


def test_index_links_each_shard_report_and_escapes():
    shards = [shard(0, "Passed", total=1, passed=1), shard(1, "Failed", total=1, failed=1)]
    run = merge_summaries(shards, "p") | {"failedTests": ["t.py::test[<b>]"]}
    page = index_html(run, shards)
    assert 'href="shard-0/report.html"' in page and 'href="shard-1/report.html"' in page
    assert "t.py::test[&lt;b&gt;]" in page and "<b>]" not in page
