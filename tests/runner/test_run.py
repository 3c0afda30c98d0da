"""Real runs: tep_runner.run (or python -m tep_runner) on real suites; numbers read from the real files."""

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from tep_runner.htmlreport import parse
from tep_runner.message import MAX_BYTES

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PASSING = {
    "test_math.py": """
        import pytest

        @pytest.mark.parametrize("n", range(4))
        def test_square(n):
            assert n * n >= 0
    """,
    "pkg/test_text.py": """
        class TestText:
            def test_upper(self):
                assert "a".upper() == "A"

            def test_lower(self):
                assert "A".lower() == "a"
    """,
}


def test_all_pass_with_auto_workers(run_runner, write_suite, monkeypatch):
    monkeypatch.setenv("PYTEST_XDIST_AUTO_NUM_WORKERS", "2")  # as the operator sets it from the CPU limit
    result = run_runner(write_suite("suite", PASSING), TEP_WORKERS="auto", TEP_JOB_NAME="demo-29400000")
    assert result.code == 0, result.output
    run_dir = result.plan_dir / "20251124T160000Z-29400000"
    assert result.run_dir == run_dir
    assert os.readlink(result.plan_dir / "latest") == run_dir.name
    assert result.message == {
        "v": 1, "result": "Passed", "total": 6, "passed": 6, "failed": 0, "errors": 0, "skipped": 0,
        "xfailed": 0, "xpassed": 0, "flaky": 0, "durationSeconds": result.message["durationSeconds"],
        "workers": 2, "shard": 0, "shards": 1, "reportPath": "qa/demo/20251124T160000Z-29400000/report.html",
        "failedTests": [], "cpuUtilization": result.message["cpuUtilization"],
    }  # fmt: skip
    assert 0 < result.message["durationSeconds"] < 60
    assert 0 <= result.message["cpuUtilization"] == result.summary()["cpuUtilization"]
    summary = result.summary()
    assert (summary["total"], summary["pytestExitCode"], summary["runId"]) == (6, 0, run_dir.name)
    assert len(ET.parse(run_dir / "junit.xml").getroot().findall(".//testcase")) == 6
    assert "pytest-html" in (run_dir / "report.html").read_text()
    log = (run_dir / "pytest.log").read_text()
    assert "6 passed" in log and "6 passed" in result.output  # streamed and kept


def test_mixed_example_with_a_flaky_test(run_runner):
    result = run_runner(EXAMPLES / "mixed" / "tests", TEP_RERUNS="1")
    assert result.code == 1, result.output
    counts = {
        k: result.message[k] for k in ("result", "total", "passed", "failed", "errors", "skipped", "flaky")
    }
    assert counts == {
        "result": "Failed",
        "total": 8,
        "passed": 6,
        "failed": 1,
        "errors": 0,
        "skipped": 1,
        "flaky": 1,
    }
    assert result.message["failedTests"] == ["test_mixed.py::test_wrong_total"]
    assert result.summary()["failedTests"] == ["test_mixed.py::test_wrong_total"]


def test_reruns_do_not_stall_each_test_under_xdist(run_runner, write_suite):
    # tep_runner.plugin sets TCP_NODELAY on pytest-rerunfailures' socket to the controller (see there).
    suite = {"test_socket.py": """
        import socket

        def test_nodelay(request):
            sock = request.config.failures_db.sock
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    """}  # fmt: skip
    result = run_runner(write_suite("suite", suite), TEP_RERUNS="1")
    assert (result.code, result.message["passed"], result.message["flaky"]) == (0, 1, 0), result.output


def test_without_reruns_the_flaky_test_fails(run_runner):
    result = run_runner(EXAMPLES / "mixed" / "tests", TEP_DIST="no")
    assert result.code == 1, result.output
    assert (result.message["failed"], result.message["flaky"], result.message["workers"]) == (2, 0, 1)
    assert sorted(result.message["failedTests"]) == [
        "test_mixed.py::test_flaky_first_attempt",
        "test_mixed.py::test_wrong_total",
    ]


def test_collection_error_is_error_not_failure(run_runner, write_suite):
    tests = write_suite(
        "suite", PASSING | {"test_broken.py": "import no_such_module\n\ndef test_x():\n    pass\n"}
    )
    result = run_runner(tests)
    assert result.code == 2, result.output
    assert result.message["result"] == "Error"
    why = "collection errors in test_broken.py: E   ModuleNotFoundError: No module named 'no_such_module'"
    assert result.message["reason"] == why
    assert result.message["failedTests"] == ["test_broken.py"]
    assert result.summary()["reason"] == why


def test_no_tests(run_runner, write_suite):
    result = run_runner(write_suite("suite", {"helpers.py": "X = 1\n"}))
    assert result.code == 2, result.output
    assert result.message["result"] == "Error"
    assert result.message["reason"].startswith("no tests collected")
    assert result.message["total"] == 0


def test_bad_pytest_args(run_runner, write_suite):
    result = run_runner(write_suite("suite", PASSING), TEP_PYTEST_ARGS='["--no-such-option"]')
    assert result.code == 2, result.output
    assert result.message["reason"].startswith("pytest usage error")
    assert "--no-such-option" in result.message["reason"]
    # No report.html was written, so the status points at the log that says why.
    assert result.message["reportPath"].endswith("/pytest.log")
    assert (result.reports / result.message["reportPath"]).exists()


def test_300_failing_tests_message_stays_small(run_runner, write_suite):
    suite = {"test_fail.py": f"""
        import pytest

        @pytest.mark.parametrize("case", range(300))
        def test_order_state_{'x' * 150}(case):
            assert case < 0
    """}  # fmt: skip
    result = run_runner(write_suite("suite", suite))
    assert result.code == 1
    assert result.message_bytes <= MAX_BYTES
    assert (result.message["total"], result.message["failed"]) == (300, 300)
    assert 1 <= len(result.message["failedTests"]) <= 20
    assert len(result.summary()["failedTests"]) == 300


def test_retention(run_runner, write_suite, tmp_path):
    plan_dir = tmp_path / "reports" / "qa" / "demo"
    outside = tmp_path / "outside"
    (outside / "keep-me").mkdir(parents=True)
    (outside / "keep-me" / "data.txt").write_text("precious")
    for name in ("20200101T000000Z-old", "20990101T000000Z-b", "20990102T000000Z-c", "20990103T000000Z-d"):
        (plan_dir / name).mkdir(parents=True)
        (plan_dir / name / "summary.json").write_text("{}")
    (plan_dir / "20200102T000000Z-link").symlink_to(outside / "keep-me")  # planted, old by its name
    (plan_dir / "20990104T000000Z-newlink").symlink_to(outside)  # planted, new: kept, never followed
    (plan_dir / "latest").symlink_to("20990103T000000Z-d")

    result = run_runner(
        write_suite("suite", PASSING),
        TEP_KEEP_LAST="3",
        TEP_MAX_AGE_DAYS="7",
        TEP_RUN_ID="20990105T000000Z-now",
    )
    assert result.code == 0, result.output
    # Hidden names are the runner's own (the run history, tep_runner.history): retention leaves them.
    assert sorted(p.name for p in plan_dir.iterdir() if not p.name.startswith(".")) == [
        "20990103T000000Z-d", "20990104T000000Z-newlink", "20990105T000000Z-now", "latest",
    ]  # fmt: skip
    assert (outside / "keep-me" / "data.txt").read_text() == "precious"
    assert os.readlink(plan_dir / "latest") == "20990105T000000Z-now"


def test_read_only_configmap_layout(run_runner, tmp_path):
    # A configMap volume: the files are links into ..data, itself a link to a timestamped folder.
    mount = tmp_path / "configmap"
    payload = mount / "..2026_11_21_19_42_00.123456789"
    payload.mkdir(parents=True)
    for source in (EXAMPLES / "smoke" / "tests").iterdir():
        if source.is_file():  # the tests, conftest.py and the suite's pytest.ini
            shutil.copy(source, payload / source.name)
            (mount / source.name).symlink_to(Path("..data") / source.name)
    (mount / "..data").symlink_to(payload.name)
    before = snapshot(mount)
    for path in (payload, mount):
        path.chmod(0o555)
    try:
        result = run_runner(mount)
    finally:
        for path in (payload, mount):
            path.chmod(0o755)
    assert result.code == 0, result.output
    assert (result.message["total"], result.message["passed"], result.message["workers"]) == (9, 9, 2)
    assert snapshot(mount) == before  # nothing written beside the tests (root ignores the mode bits)
    assert result.summary()["configFile"] == str(
        mount / "pytest.ini"
    )  # a link into ..data: still the suite's
    ids = [
        f"{c.get('file')}::{c.get('name')}" for c in ET.parse(result.run_dir / "junit.xml").iter("testcase")
    ]
    assert len(ids) == len(set(ids)) == 9
    assert all(not i.startswith("..") for i in ids)


def snapshot(root: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(root)), p.lstat().st_mtime_ns) for p in root.rglob("*"))


def test_two_shards_into_one_run_folder(runner_env, write_suite, tmp_path):
    tests = write_suite(
        "suite", PASSING | {"test_more.py": "def test_ok():\n    pass\n\ndef test_bad():\n    assert 0\n"}
    )
    procs = []
    for index in range(2):
        env = runner_env(tests, TEP_SHARDS="2", TEP_SHARD_INDEX=str(index), TEP_JOB_NAME="demo-29400000")
        env["TEP_TERMINATION_LOG"] = str(tmp_path / f"message-{index}")
        command = [sys.executable, "-m", "tep_runner"]
        procs.append(
            subprocess.Popen(
                command, env=os.environ | env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
        )
    outputs = [proc.communicate()[0] for proc in procs]
    messages = [json.loads((tmp_path / f"message-{i}").read_text()) for i in range(2)]
    assert sorted(proc.returncode for proc in procs) == [0, 1], outputs  # test_bad lands in one shard only
    assert [(m["shard"], m["shards"]) for m in messages] == [(0, 2), (1, 2)]
    assert sorted(m["total"] for m in messages) == [4, 4]
    run_dir = tmp_path / "reports" / "qa" / "demo" / "20251124T160000Z-29400000"
    assert messages[0]["reportPath"] == "qa/demo/20251124T160000Z-29400000/shard-0/report.html"
    run = json.loads((run_dir / "summary.json").read_text())
    assert (run["result"], run["total"], run["passed"], run["failed"], run["shards"]) == (
        "Failed",
        8,
        7,
        1,
        2,
    )
    assert run["failedTests"] == ["test_more.py::test_bad"]
    assert len(ET.parse(run_dir / "junit.xml").getroot().findall(".//testcase")) == 8
    # One pytest-html report of both shards (tep_runner.htmlreport), each test with the shard that ran it.
    page = parse((run_dir / "report.html").read_text())
    shard_of = {test: rows[-1]["shard"] for test, rows in page.data["tests"].items()}
    assert len(shard_of) == 8 and sorted(set(shard_of.values())) == ["0", "1"]
    assert [r["result"] for r in page.data["tests"]["test_more.py::test_bad"]] == ["Failed"]
    assert (run_dir / "shard-1" / "report.html").exists()
    assert run["imbalance"] >= 1.0


def test_invalid_settings_exit_2_and_say_which(tmp_path, runner_env, write_suite):
    env = runner_env(write_suite("suite", PASSING), TEP_WORKERS="zero")
    proc = subprocess.run(
        [sys.executable, "-m", "tep_runner"], env=os.environ | env, capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "TEP_WORKERS" in proc.stdout
    message = json.loads((tmp_path / "termination-log").read_text())
    assert message["result"] == "Error" and message["reason"].startswith("TEP_WORKERS:")


def test_missing_tests_folder(run_runner, tmp_path):
    result = run_runner(tmp_path / "nowhere")
    assert result.code == 2
    assert result.message["reason"] == f"TEP_TESTS_DIR: {tmp_path / 'nowhere'} is not a directory"
    assert result.summary(result.plan_dir / "latest")["result"] == "Error"


def test_the_suites_own_ini_counts_and_a_folder_above_does_not(run_runner, write_suite, tmp_path):
    # An unrelated project's config above the tests (a laptop checkout) would break the run ...
    (tmp_path / "pyproject.toml").write_text('[tool.pytest.ini_options]\naddopts = "--no-such-flag"\n')
    plain = run_runner(write_suite("plain", {"test_a.py": "def test_a():\n    pass\n"}))
    assert plain.code == 0, plain.output
    # ... while the suite's own ini file is honoured: here it collects check_*.py files.
    own = run_runner(write_suite("own", {
        "pytest.ini": "[pytest]\npython_files = check_*.py\n",
        "check_b.py": "def test_b():\n    pass\n\ndef test_c():\n    pass\n",
        "test_ignored.py": "def test_x():\n    raise AssertionError\n",
    }))  # fmt: skip
    assert own.code == 0, own.output
    assert own.message["total"] == 2
