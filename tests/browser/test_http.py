"""Every page and API route of `tep serve`, on a volume written by real runner runs; and every way out."""

import html as html_lib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from urllib.parse import quote

import pytest

from tep_operator.browser.app import FILE_CSP, PAGE_CSP
from tep_runner import history
from tests.browser.conftest import start_server


def page(server, path):
    status, headers, body = server.get(path)
    assert status == 200, (path, body[:500])
    assert headers["content-type"].startswith("text/html")
    assert headers["content-security-policy"] == PAGE_CSP
    assert headers["x-content-type-options"] == "nosniff"
    return body.decode()


def test_plans_page_red_first_with_since_and_cells(server, volume):
    html = page(server, "/")
    order = [m for m in re.findall(r'href="/plans/qa/(\w+)"', html)]
    assert order[:3] == ["web", "broken", "sharded"]  # red first, the longest red on top
    web_row = html[html.index('href="/plans/qa/web"') :].split("</tr>")[0]
    assert "Failed" in web_row and "red since" in web_row and "(3 runs)" in web_row
    assert web_row.count('href="/plans/qa/web/runs/') == 3  # every run of the history, also the removed one
    assert "<svg" in web_row  # the duration sparkline, rendered on the server
    assert "<script" not in html


def test_api_plans(server, volume):
    plans = {p["plan"]: p for p in server.json("/api/plans")["plans"]}
    assert set(plans) == {"web", "sharded", "broken"}
    web = plans["web"]
    assert (web["namespace"], web["runs"], web["redRuns"], web["lastPassed"]) == ("qa", 3, 3, None)
    assert [r["runId"] for r in web["recent"]] == volume.web_runs[::-1]
    assert web["lastRun"]["trigger"] == "schedule" and web["lastRun"]["result"] == "Failed"
    assert (web["lastRun"]["failed"], web["lastRun"]["passed"], web["lastRun"]["skipped"]) == (2, 2, 1)
    sharded = plans["sharded"]["lastRun"]
    assert {k: sharded[k] for k in ("result", "shards", "total", "trigger")} == {
        "result": "Passed", "shards": 2, "total": 6, "trigger": "manual",
    }  # fmt: skip
    assert plans["sharded"]["passRate"] == 1.0 and plans["sharded"]["redSince"] is None
    assert (
        plans["broken"]["lastRun"]["result"] == "Error"
        and "test_bad.py" in plans["broken"]["lastRun"]["reason"]
    )
    only = server.json("/api/plans?q=shard")["plans"]
    assert [p["plan"] for p in only] == ["sharded"]


def test_plan_page_plots_rankings_grid_and_runs(server, volume):
    html = html_lib.unescape(page(server, "/plans/qa/web"))
    assert html.count("<svg") == 2 and "Duration (seconds)" in html and "Tests per run" in html
    for definition in ("Allure", "TestGrid's FLAKY", "TestGrid's FAILING", "passed in the run before it"):
        assert definition in html
    section = {
        k: html[html.index(f'id="{k}"') :].split("</section>")[0]
        for k in ("flaky", "failing", "new-failures")
    }
    assert "test_web.py::test_flaky" in section["flaky"]
    assert "test_web.py::test_broken" in section["failing"] and "test_regress" not in section["failing"]
    assert "test_web.py::test_regress" in section["new-failures"]
    grid = html[html.index('id="grid"') : html.index('id="runs"')]
    first, _, third = volume.web_runs
    assert grid.count(f'href="/files/qa/web/{third}/report.html"') == 5  # one cell per test
    assert f"/files/qa/web/{first}/" not in grid and "removed by retention" in grid  # history outlived it
    row = grid[grid.index("test_web.py::test_flaky</a>") :].split("</tr>")[0]
    assert re.findall(r'class="(\w+)"[^>]*title="[^"]*: (\w+)', row)[:3] == [
        ("passed", "passed"), ("passed", "passed"), ("flaky", "flaky"),
    ]  # fmt: skip
    runs = html[html.index('id="runs"') :]
    assert runs.count('<span class="badge Failed"') == 3 and "schedule" in runs


def test_api_plan_matches_the_page(server, volume):
    data = server.json("/api/plans/qa/web")
    assert [r["runId"] for r in data["runs"]] == volume.web_runs[::-1]
    assert [r["folder"] for r in data["runs"]] == [True, True, False]
    tests = {t["test"]: t for t in data["tests"]}
    assert tests["test_web.py::test_regress"]["outcomes"] == dict(
        zip(volume.web_runs[::-1], ["failed", "passed", "passed"], strict=True)
    )
    assert tests["test_web.py::test_skip"]["outcomes"][volume.web_runs[0]] == "skipped"
    ranks = data["rankings"]
    assert [t["test"] for t in ranks["flaky"]] == ["test_web.py::test_flaky"]
    assert [t["test"] for t in ranks["failing"]] == ["test_web.py::test_broken"]
    assert ranks["failing"][0]["failingRuns"] == 3
    assert [t["test"] for t in ranks["newFailures"]] == ["test_web.py::test_regress"]
    assert set(ranks["definitions"]) == {"flaky", "failing", "new failures", "slowest"}
    assert [r["runId"] for r in server.json("/api/plans/qa/web?runs=1")["runs"]] == [volume.web_runs[-1]]


def test_run_page_files_and_failures_with_messages(server, volume):
    run = volume.web_runs[-1]
    html = page(server, f"/plans/qa/web/runs/{run}")
    for name in ("report.html", "junit.xml", "summary.json", "pytest.log"):
        assert f'href="/files/qa/web/{run}/{name}"' in html
    assert "&lt;b&gt;always&lt;/b&gt; broken" in html and "<b>always</b>" not in html  # escaped
    assert "broke in the third run" in html
    data = server.json(f"/api/plans/qa/web/runs/{run}")
    assert {f["test"]: f["outcome"] for f in data["failures"]} == {
        "test_web.py::test_broken": "failed",
        "test_web.py::test_regress": "failed",
    }
    assert data["run"]["tests"]["test_web.py::test_ok"]["outcome"] == "passed"
    first = page(server, f"/plans/qa/web/runs/{volume.web_runs[0]}")
    assert "retention removed it" in first and "test_web.py::test_broken" in first
    assert "files" not in server.json(f"/api/plans/qa/web/runs/{volume.web_runs[0]}")


def test_sharded_run_page_lists_its_shards(server, volume):
    run = volume.sharded_run
    html = page(server, f"/plans/qa/sharded/runs/{run}")
    for i in range(2):
        assert f'href="/files/qa/sharded/{run}/shard-{i}/report.html"' in html
    data = server.json(f"/api/plans/qa/sharded/runs/{run}")
    assert [(s["shard"], s["summary"]["result"]) for s in data["shards"]] == [(0, "Passed"), (1, "Passed")]
    assert sum(s["summary"]["total"] for s in data["shards"]) == data["run"]["total"] == 6
    assert len(data["run"]["tests"]) == 6


def test_error_run(server, volume):
    html = page(server, f"/plans/qa/broken/runs/{volume.broken_run}")
    assert "badge Error" in html and "test_bad.py" in html
    data = server.json(f"/api/plans/qa/broken/runs/{volume.broken_run}")
    assert data["run"]["result"] == "Error"
    assert {f["test"]: f["outcome"] for f in data["failures"]} == {"test_bad.py": "error"}
    assert "no_such_module" in data["failures"][0]["message"]


def test_test_page_and_api(server, volume):
    test = quote("test_web.py::test_regress", safe="")
    html = page(server, f"/plans/qa/web/tests?id={test}")
    assert "test_web.py::test_regress" in html and "<svg" in html
    data = server.json(f"/api/plans/qa/web/tests?id={test}")
    assert [r["outcome"] for r in data["runs"]] == ["failed", "passed", "passed"]
    assert data["newFailure"] is True


def test_volume_files_and_their_headers(server, volume):
    run = volume.web_runs[-1]
    status, headers, body = server.get("/files/qa/web/latest/report.html")  # through the `latest` link
    assert status == 200 and headers["content-security-policy"] == FILE_CSP
    assert headers["content-type"] == "text/html; charset=utf-8" and b"pytest-html" in body
    assert body.index(b"sessionStorage") < body.index(b"<body")  # the storage stand-in comes first
    for name, kind in (
        ("pytest.log", "text/plain"),
        ("junit.xml", "text/plain"),
        ("summary.json", "application/json"),
    ):
        status, headers, body = server.get(f"/files/qa/web/{run}/{name}")
        assert status == 200 and headers["content-type"].startswith(kind), name
        assert (
            headers["content-security-policy"] == FILE_CSP and headers["x-content-type-options"] == "nosniff"
        )
        assert body == (volume.root / "qa" / "web" / run / name).read_bytes()
    status, headers, body = server.get("/files/qa/web/latest/summary.json", method="HEAD")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 0
    assert server.get(f"/files/qa/sharded/{volume.sharded_run}/shard-1/junit.xml")[0] == 200


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_no_write_endpoint(server, method):
    for path in ("/", "/files/qa/web/latest/summary.json", "/api/plans"):
        assert server.get(path, method=method)[0] == 405


ESCAPES = [
    "/files/../../../etc/passwd",
    "/files/qa/../../../../etc/passwd",
    "/files/qa/web/latest/../../../../../etc/passwd",
    "/files//etc/passwd",
    "/files/%2fetc%2fpasswd",
    "/files/%2e%2e/%2e%2e/etc/passwd",
    "/files/qa%2fweb%2flatest%2fsummary.json",  # an encoded separator, even towards a real file
    "/files/qa%5cweb%5clatest%5csummary.json",
    "/files/qa/web/latest%2f..%2f..%2f..%2fetc%2fpasswd",
    "/files/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
    "/files/qa/web/./latest/summary.json",
    "/files/qa/web",  # a folder is not a file
    "/files/qa/web/latest",
    "/files/",
    "/files/qa/web/nothing.txt",
    "/plans/qa/..%2f..%2fetc",
    "/plans/qa/nope",
    "/plans/qa/web/runs/nope",
    "/plans/qa/web/tests?id=nope",
    "/api/plans/qa/nope",
    "/api/plans/qa/web/runs/nope",
    "/nothing",
]


@pytest.mark.parametrize("path", ESCAPES)
def test_paths_out_of_the_root_or_unknown_are_404(server, path):
    status, _, body = server.get(path)
    assert status == 404, body[:300]
    assert b"root:" not in body


def test_planted_links_pointing_outside_are_refused(server, volume, tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    run_dir = volume.root / "qa" / "web" / volume.web_runs[-1]
    planted = [
        (run_dir / "leak.txt", outside),
        (volume.root / "qa" / "web" / "escape", tmp_path),
        (volume.root / "qa" / "planted", tmp_path),
        (volume.root / "elsewhere", tmp_path),
    ]
    try:
        for link, target in planted:
            link.symlink_to(target)
        for path in (
            f"/files/qa/web/{volume.web_runs[-1]}/leak.txt",
            "/files/qa/web/escape/secret.txt",
            "/files/qa/planted/secret.txt",
            "/files/elsewhere/secret.txt",
            "/plans/qa/planted",
            "/plans/elsewhere/x",
        ):
            status, _, body = server.get(path)
            assert status == 404 and b"secret" not in body, path
        assert "planted" not in json.dumps(server.json("/api/plans"))
        assert "leak.txt" not in page(server, f"/plans/qa/web/runs/{volume.web_runs[-1]}")
    finally:
        for link, _ in planted:
            link.unlink(missing_ok=True)


def test_healthz(server):
    assert server.get("/healthz")[:1] == (200,)


def test_a_new_run_shows_within_5_seconds(tmp_path, runner_suite_env):
    root = tmp_path / "reports"
    root.mkdir()
    proc, server = start_server(root)
    try:
        assert server.json("/api/plans")["plans"] == []
        done = subprocess.run([sys.executable, "-m", "tep_runner"], env=os.environ | runner_suite_env(root),
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stdout
        finished = time.monotonic()
        while not server.json("/api/plans")["plans"]:
            assert time.monotonic() - finished < 5, "the new run did not show within 5 s"
            time.sleep(0.1)
        (plan,) = server.json("/api/plans")["plans"]
        assert (plan["plan"], plan["lastRun"]["result"], plan["lastRun"]["trigger"]) == (
            "fresh",
            "Passed",
            "local",
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def runner_suite_env(tmp_path):
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_one.py").write_text("def test_one():\n    pass\n")

    def env(root):
        return {
            "TEP_NAMESPACE": "qa",
            "TEP_PLAN": "fresh",
            "TEP_TESTS_DIR": str(tests),
            "TEP_REPORTS_DIR": str(root),
            "TEP_WORKERS": "1",
            "PYTHONWARNINGS": "ignore",
        }

    return env


def test_run_folders_without_history_still_show(tmp_path, volume):
    """Runs from before the history existed: read from their own summary.json and junit.xml."""
    root = tmp_path / "reports"
    newest = volume.root / "qa" / "web" / volume.web_runs[-1]
    shutil.copytree(newest, root / "qa" / "old" / newest.name)
    (root / "qa" / "old" / "20990101T000000Z-running").mkdir()  # a run still going: no summary yet
    proc, server = start_server(root)
    try:
        data = server.json("/api/plans/qa/old")
        assert [(r["runId"], r["result"], r["trigger"]) for r in data["runs"]] == [
            (newest.name, "Failed", "")
        ]
        assert len(data["tests"]) == 5 and data["inProgress"] == ["20990101T000000Z-running"]
        assert "running" in page(server, "/plans/qa/old/runs/20990101T000000Z-running")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_sharded_run_is_one_history_record(volume):
    (record,) = history.read_records(volume.root / "qa" / "sharded")
    assert record["runId"] == volume.sharded_run and record["shards"] == 2 and len(record["tests"]) == 6
