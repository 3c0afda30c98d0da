"""Hangs, deadlines and signals: real runs of a suite with a test that sleeps 600 s.

Each run is stopped (the runner's deadline, SIGTERM, SIGINT) once the sleeping test has started; it must
end within the deadline plus the stop budget, name the test in failedTests and timedOut, and leave every
artifact counting it failed: pytest's final line, junit.xml, report.html, summary.json and the message.
"""

import html
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest

from tep_runner import stopping
from tep_runner.command import pytest_command
from tep_runner.message import termination_message
from tep_runner.record import BEGIN, FINISH, REPORT, START, line, read_record
from tep_runner.settings import SettingsError, settings_from_env
from tep_runner.summary import counts_from_record, summarize

HANG = "test_hang.py::test_hang"
QUICK = ["test_hang.py::test_quick_a", "test_hang.py::test_quick_b"]
TEP = pathlib.Path(sys.executable).with_name("tep")  # the console script of this environment
# Far below the 600 s the test sleeps; covers a slow start of pytest and xdist on a busy machine.
STOP_WITHIN = stopping.ACK_SECONDS + 10
# Long enough for pytest and two xdist workers to start and reach the sleeping test on a busy 2-core machine.
DEADLINE = 10


def hanging_suite(write_suite, started: pathlib.Path, *, ignore_sigint: bool = False):
    """Two quick tests and one that sleeps 600 s; `started` appears when it sleeps, the others done."""
    guard = "signal.signal(signal.SIGINT, signal.SIG_IGN)" if ignore_sigint else "pass"
    return write_suite("suite", {"test_hang.py": f"""
        import pathlib, signal, time

        STARTED = pathlib.Path({str(started)!r})

        def test_quick_a():
            STARTED.with_suffix(".a").touch()

        def test_quick_b():
            STARTED.with_suffix(".b").touch()

        def test_hang():
            {guard}
            # Under xdist the other worker may still be on its quick test: a stop must find it finished.
            while not (STARTED.with_suffix(".a").exists() and STARTED.with_suffix(".b").exists()):
                time.sleep(0.05)
            STARTED.touch()
            time.sleep(600)
    """})  # fmt: skip


def wait_for(path: pathlib.Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared: the hanging test did not start"
        time.sleep(0.05)


def html_results(report: pathlib.Path) -> dict[str, str]:
    """pytest-html's own verdict of each test, from the data the page renders."""
    blob = re.search(r'data-jsonblob="([^"]*)"', report.read_text()).group(1)
    return {nodeid: runs[-1]["result"] for nodeid, runs in json.loads(html.unescape(blob))["tests"].items()}


def junit_results(junit: pathlib.Path) -> dict[str, str]:
    return {
        f"{case.get('file')}::{case.get('name')}": "failed" if case.find("failure") is not None else "passed"
        for case in ET.parse(junit).iter("testcase")
        if case.get("name")
    }


def assert_stopped(message: dict, run_dir: pathlib.Path, reason_start: str) -> None:
    """Every artifact tells one story: the quick tests passed, the sleeping one failed and timed out."""
    summary = json.loads((run_dir / "summary.json").read_text())
    for doc in (message, summary):
        assert doc["result"] == "Error", doc
        assert doc["reason"].startswith(reason_start), doc["reason"]
        assert doc["reason"].endswith(f"stopped while running {HANG}"), doc["reason"]
        assert (doc["total"], doc["passed"], doc["failed"]) == (3, 2, 1), doc
        assert doc["failedTests"] == [HANG] and doc["timedOut"] == [HANG], doc
    assert junit_results(run_dir / "junit.xml") == {QUICK[0]: "passed", QUICK[1]: "passed", HANG: "failed"}
    assert html_results(run_dir / "report.html") == {QUICK[0]: "Passed", QUICK[1]: "Passed", HANG: "Failed"}
    log = (run_dir / "pytest.log").read_text()
    assert re.search(r"=+ 1 failed, 2 passed in ", log), log[-2000:]  # pytest's own final line
    assert "tep-runner stopped this test before it finished" in log
    # A stopped run is in the plan's history too, the stopped test failed.
    history = (run_dir.parent / ".history.jsonl").read_text().splitlines()
    last = json.loads(history[-1])
    assert (last["runId"], last["result"]) == (summary["runId"], "Error"), last
    assert last["tests"][HANG][0] == "failed" and last["counts"]["failed"] == 1, last


def run_dir_of(tmp_path: pathlib.Path, message: dict) -> pathlib.Path:
    return tmp_path / "reports" / message["reportPath"].rsplit("/", 1)[0]


@pytest.mark.parametrize("dist", ["load", "no"])
def test_the_deadline_stops_the_run_and_names_the_test(runner_env, write_suite, tmp_path, dist):
    suite = hanging_suite(write_suite, tmp_path / "started")
    env = os.environ | runner_env(suite, TEP_DIST=dist, TEP_ACTIVE_DEADLINE_SECONDS=str(DEADLINE))
    began = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "tep_runner"], env=env, capture_output=True, text=True, timeout=120
    )
    took = time.monotonic() - began
    assert (tmp_path / "started").exists(), proc.stdout
    assert proc.returncode == 2, proc.stdout
    assert DEADLINE <= took < DEADLINE + STOP_WITHIN, proc.stdout
    message = json.loads((tmp_path / "termination-log").read_text())
    assert_stopped(message, run_dir_of(tmp_path, message), f"activeDeadlineSeconds ({DEADLINE} s) exceeded; ")


@pytest.mark.parametrize(("signum", "dist"), [(signal.SIGTERM, "load"), (signal.SIGINT, "no")])
def test_a_signal_stops_the_run_and_names_the_test(runner_env, write_suite, tmp_path, signum, dist):
    # SIGTERM is what the kubelet sends at the pod's activeDeadlineSeconds, and `kubectl delete pod` too.
    started = tmp_path / "started"
    env = os.environ | runner_env(
        hanging_suite(write_suite, started), TEP_DIST=dist, TEP_ACTIVE_DEADLINE_SECONDS="300"
    )
    proc = subprocess.Popen([sys.executable, "-m", "tep_runner"], env=env, stdout=subprocess.PIPE, text=True)
    wait_for(started)
    proc.send_signal(signum)
    sent = time.monotonic()
    output = proc.communicate(timeout=60)[0]
    assert time.monotonic() - sent < STOP_WITHIN, output
    assert proc.returncode == 2, output
    message = json.loads((tmp_path / "termination-log").read_text())
    name = signal.Signals(signum).name
    assert_stopped(message, run_dir_of(tmp_path, message), f"stopped by {name} after ")
    if signum == signal.SIGTERM:  # the runner says what it knows: the signal, and the deadline it was given
        assert "(activeDeadlineSeconds is 300 s); " in message["reason"]


def local_plan(tmp_path: pathlib.Path, **spec) -> pathlib.Path:
    plan = tmp_path / "plan.yaml"
    body = {
        "apiVersion": "tep.dev/v1alpha1",
        "kind": "TestPlan",
        "metadata": {"name": "hang"},
        "spec": {
            "crontab": "@daily",
            "source": {"configMap": {"name": "hang-tests"}},
            "pytest": {"workers": 2},
            **spec,
        },
    }
    plan.write_text(json.dumps(body))  # YAML is a superset of JSON
    return plan


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_tep_run_local_stops_on_a_signal(write_suite, tmp_path, signum):
    started = tmp_path / "started"
    suite = hanging_suite(write_suite, started)
    command = [str(TEP), "run", "--local", "-f", str(local_plan(tmp_path)), "--tests", str(suite)]
    proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, text=True)
    wait_for(started)
    proc.send_signal(signum)
    sent = time.monotonic()
    output = proc.communicate(timeout=60)[0]
    assert time.monotonic() - sent < STOP_WITHIN, output
    assert proc.returncode == 2, output
    assert "tep: Error: 3 tests, 2 passed, 1 failed" in output
    assert f"tep: failed: {HANG}" in output and f"tep: timed out: {HANG}" in output
    run_dir = (tmp_path / "tep-reports" / "default" / "hang" / "latest").resolve()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert_stopped(summary, run_dir, f"stopped by {signal.Signals(signum).name} after ")


def test_tep_run_local_enforces_active_deadline_seconds(write_suite, tmp_path):
    suite = hanging_suite(write_suite, tmp_path / "started")
    plan = local_plan(tmp_path, activeDeadlineSeconds=DEADLINE, pytest={"dist": "no"})  # xdist: above
    command = [str(TEP), "run", "--local", "-f", str(plan)]
    began = time.monotonic()
    proc = subprocess.run(
        [*command, "--tests", str(suite)], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert time.monotonic() - began < DEADLINE + STOP_WITHIN, proc.stdout
    assert proc.returncode == 2, proc.stdout + proc.stderr
    reason = f"activeDeadlineSeconds ({DEADLINE} s) exceeded; stopped while running {HANG}"
    assert f"tep: reason: {reason}" in proc.stdout, proc.stdout
    run_dir = (tmp_path / "tep-reports" / "default" / "hang" / "latest").resolve()
    assert_stopped(json.loads((run_dir / "summary.json").read_text()), run_dir, reason)


def test_a_pytest_that_will_not_stop_is_killed_and_still_summarised(
    run_runner, write_suite, tmp_path, monkeypatch
):
    # The sleeping test ignores SIGINT in pytest's own process (-n 0: `dist: no` is one xdist worker, which
    # the runner would kill), so pytest never ends by itself: the runner kills it after its stop budget and
    # writes summary.json and the message from the run's record so far.
    monkeypatch.setattr(stopping, "STOP_SECONDS", 2)
    suite = hanging_suite(write_suite, tmp_path / "started", ignore_sigint=True)
    began = time.monotonic()
    result = run_runner(suite, TEP_DIST="no", TEP_PYTEST_ARGS='["-n", "0"]', TEP_ACTIVE_DEADLINE_SECONDS="3")
    assert time.monotonic() - began < 3 + 2 + 10, result.output
    assert result.code == 2, result.output
    assert "pytest did not stop within 2 s: killing it" in result.output
    for doc in (result.message, json.loads((result.run_dir / "summary.json").read_text())):
        assert doc["reason"] == f"activeDeadlineSeconds (3 s) exceeded; stopped while running {HANG}"
        assert (doc["total"], doc["passed"], doc["failed"]) == (3, 2, 1), doc
        assert doc["failedTests"] == [HANG] and doc["timedOut"] == [HANG]
    assert result.message["reportPath"].endswith("/pytest.log")  # pytest wrote no report.html


@pytest.mark.parametrize("args", [[], ["-n", "0"]])
def test_a_sigkilled_pytest_still_counts_what_it_recorded(run_runner, write_suite, args):
    # A test that SIGKILLs its own process: under xdist its worker (xdist reports it, the run goes on), in
    # process pytest itself, which then writes no final line and no reports: the record still counts.
    suite = write_suite("suite", {"test_kill.py": """
        import os, signal

        def test_a():
            pass

        def test_b():
            pass

        def test_kill():
            os.kill(os.getpid(), signal.SIGKILL)
    """})  # fmt: skip
    result = run_runner(suite, TEP_DIST="no", TEP_PYTEST_ARGS=json.dumps(args))
    summary = result.summary()
    for doc in (result.message, summary):
        assert (doc["total"], doc["passed"], doc["failed"]) == (3, 2, 1), doc
        assert doc["failedTests"] == ["test_kill.py::test_kill"], doc
    assert summary["timedOut"] == []  # it crashed; nothing stopped it
    if args:  # pytest itself was killed
        assert result.code == 2 and result.message["reason"].startswith("pytest was killed by signal 9")
        assert result.message["reportPath"].endswith("/pytest.log")
    else:
        assert result.code == 1 and result.message["result"] == "Failed", result.output


def test_pytest_timeout_fails_the_test_and_lists_it_as_timed_out(run_runner, write_suite, tmp_path):
    suite = hanging_suite(write_suite, tmp_path / "started")
    result = run_runner(suite, TEP_TIMEOUT_SECONDS="1")
    assert result.code == 1, result.output
    assert result.message["result"] == "Failed"
    assert (result.message["passed"], result.message["failed"]) == (2, 1)
    assert result.message["failedTests"] == [HANG] and result.message["timedOut"] == [HANG]
    assert result.summary()["timedOut"] == [HANG]
    # the same verdict as pytest-timeout gives under bare pytest
    bare = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--timeout", "1", str(suite)],
        cwd=suite,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bare.returncode == 1 and "1 failed, 2 passed" in bare.stdout, bare.stdout
    assert junit_results(result.run_dir / "junit.xml")[HANG] == "failed"


def test_deadline_and_timeout_settings(runner_env, tmp_path):
    env = runner_env(tmp_path, TEP_ACTIVE_DEADLINE_SECONDS="30", TEP_TIMEOUT_SECONDS="7")
    settings = settings_from_env(env)
    assert (settings.deadline_seconds, settings.timeout_seconds) == (30, 7)
    assert settings_from_env(runner_env(tmp_path)).deadline_seconds is None
    command = pytest_command(settings, tmp_path, tmp_path, "python", bounded=False)
    assert "--timeout=7" in command
    for bad in ("0", "-1", "soon"):
        with pytest.raises(SettingsError, match="TEP_ACTIVE_DEADLINE_SECONDS"):
            settings_from_env(runner_env(tmp_path, TEP_ACTIVE_DEADLINE_SECONDS=bad))


def test_record_of_a_killed_pytest():
    lines = [
        line(BEGIN, rootdir="/src", configFile="", maxfail=0, collectOnly=False),
        line(START, nodeid="t.py::a"),
        line(REPORT, nodeid="t.py::a", when="setup", category="", worker="gw0"),
        line(REPORT, nodeid="t.py::a", when="call", category="passed", worker="gw0"),
        line(REPORT, nodeid="t.py::a", when="teardown", category="", worker="gw0"),
        line(FINISH, nodeid="t.py::a"),
        line(START, nodeid="t.py::slow"),
        line(REPORT, nodeid="t.py::slow", when="call", category="failed", worker="gw1", timedOut=True),
        line(FINISH, nodeid="t.py::slow"),
        line(START, nodeid="t.py::hang"),
        '{"event": "report", "nodeid": "t.py::hang", "wh',  # cut short by the kill
    ]
    record = read_record(lines)
    assert record.hit == ("t.py::hang",) and not record.acknowledged
    assert record.timed_out == ("t.py::hang", "t.py::slow")
    counts = counts_from_record(record.tally)
    assert (counts.total, counts.passed, counts.failed) == (3, 1, 2)
    assert counts.failed_tests == ("t.py::slow", "t.py::hang")
    common = dict(record=record, split={}, log_text="", duration_seconds=1.0, shard=0, shards=1,
                  report_path="r", run_id="r1", start_time="2026-12-01T00:00:00+00:00")  # fmt: skip
    stopped = summarize(exit_code=-9, stopped_by="activeDeadlineSeconds (3 s) exceeded", **common)
    assert stopped["reason"] == "activeDeadlineSeconds (3 s) exceeded; stopped while running t.py::hang"
    assert stopped["timedOut"] == ["t.py::hang", "t.py::slow"]
    assert (stopped["workers"], stopped["rootdir"]) == (2, "/src")
    crashed = summarize(exit_code=-9, **common)  # no stop: the running test crashed, it did not time out
    assert crashed["reason"].startswith("pytest was killed by signal 9") and crashed["timedOut"] == [
        "t.py::slow"
    ]
    assert crashed["failedTests"] == ["t.py::slow", "t.py::hang"]


def test_timed_out_tests_in_the_message_are_bounded():
    ids = [f"tests/test_x.py::test_hang[{'x' * 300}-{i}]" for i in range(100)]
    summary = {
        "result": "Error", "reason": "activeDeadlineSeconds (30 s) exceeded", "total": 100, "passed": 0,
        "failed": 100, "errors": 0, "skipped": 0, "xfailed": 0, "xpassed": 0, "flaky": 0,
        "durationSeconds": 30.0, "workers": 4,
        "shard": 0, "shards": 1, "reportPath": "r", "failedTests": ids, "timedOut": ids,
    }  # fmt: skip
    text = termination_message(summary)
    message = json.loads(text)
    assert len(text.encode()) <= 4096
    assert 1 <= len(message["timedOut"]) <= 20 and all(len(t) <= 200 for t in message["timedOut"])
    assert "timedOut" not in json.loads(termination_message(summary | {"timedOut": []}))


def test_the_plans_timeout_wins_over_the_suites_own(run_runner, write_suite):
    # spec.pytest.timeoutSeconds is the plan's explicit choice: over the suite's ini `timeout` and addopts.
    suite = write_suite("suite", {
        "pytest.ini": "[pytest]\ntimeout = 600\naddopts = --timeout=600\n",
        "test_slow.py": "import time\n\ndef test_slow():\n    time.sleep(60)\n",
    })  # fmt: skip
    result = run_runner(suite, TEP_TIMEOUT_SECONDS="1", TEP_DIST="no")
    assert result.code == 1, result.output
    assert result.message["timedOut"] == ["test_slow.py::test_slow"]
    assert (result.message["failed"], result.message["total"]) == (1, 1)
