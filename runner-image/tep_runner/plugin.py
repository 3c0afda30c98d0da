"""pytest plugin loaded into every run (`-p tep_runner.plugin`): evidence the JUnit XML does not hold."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from typing import Any

import pytest
from pytest_timeout import PYTEST_FAILURE_MESSAGE as _TIMEOUT_MESSAGE  # type: ignore[import-untyped]

from tep_runner.stopping import FINISH, REPORT, START, STOPPED, record, stopped_longrepr

# A test failed by pytest-timeout (signal method) says so in its failure text.
_TIMED_OUT = re.compile(re.escape(_TIMEOUT_MESSAGE).replace(re.escape("%s"), r"[0-9.]+"))
WORKERS_LINE = "tep-runner: {} workers used"


class _Recorder:
    def __init__(self, nodeids_file: str | None) -> None:
        self.nodeids_file = nodeids_file
        self.workers: set[str] = set()

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if self.nodeids_file:
            Path(self.nodeids_file).write_text("".join(f"{item.nodeid}\n" for item in session.items))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # xdist attaches the worker that produced a report as `report.node`; without xdist there is none.
        if getattr(report, "tep_stopped", False):  # made by _Progress in the controller, not by a worker
            return
        node = getattr(report, "node", None)
        self.workers.add(node.gateway.id if node is not None else "main")

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        terminalreporter.write_line(WORKERS_LINE.format(len(self.workers)))


class _Progress:
    """In the controller (xdist forwards its workers' hooks there): the tests running, and the record of
    tests started, finished and judged that the runner reads, also when pytest had to be killed.

    When the runner stops pytest (SIGINT at the deadline or on a signal), each test still running is
    reported failed through pytest_runtest_logreport, so pytest's final line, junit.xml and report.html all
    count it; the cause is the text of `stop_file`, written by the runner before it signals pytest.
    """

    def __init__(self, config: pytest.Config, path: str, stop_file: str | None) -> None:
        self.config = config
        self.stop_file = stop_file
        self.running: dict[str, tuple[str, int | None, str]] = {}  # node id -> location, in start order
        # Appended line by line, unbuffered: whatever is in the file when pytest is killed is complete.
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _write(self, event: str, **fields: Any) -> None:
        os.write(self.fd, record(event, **fields).encode())

    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        self.running[nodeid] = location
        self._write(START, nodeid=nodeid)

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        self.running.pop(nodeid, None)
        self._write(FINISH, nodeid=nodeid)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        timed_out = report.failed and bool(_TIMED_OUT.search(report.longreprtext))
        self._write(
            REPORT, nodeid=report.nodeid, when=report.when, outcome=report.outcome, timedOut=timed_out
        )

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        if not excinfo.errisinstance(KeyboardInterrupt):  # pytest.exit() is the suite's own decision
            return
        stop_file = Path(self.stop_file) if self.stop_file else None
        cause = stop_file.read_text() if stop_file and stop_file.exists() else "interrupted"
        stopped = list(self.running.items())
        for nodeid, location in stopped:
            # pytest-html and junitxml finish a test at its teardown report.
            failed = pytest.TestReport(
                nodeid, location, {}, "failed", stopped_longrepr(cause), "call", tep_stopped=True
            )
            done = pytest.TestReport(nodeid, location, {}, "passed", None, "teardown", tep_stopped=True)
            for report in (failed, done):
                self.config.hook.pytest_runtest_logreport(report=report)
            self.running.pop(nodeid, None)
        # Written last: from here on the controller takes no more events from its workers (see shell.py).
        self._write(STOPPED, nodeids=[nodeid for nodeid, _ in stopped])


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--tep-nodeids-file", default=None, help="tep-runner: write the collected node ids here")
    parser.addoption("--tep-progress-file", default=None, help="tep-runner: append the run's progress here")
    parser.addoption("--tep-stop-file", default=None, help="tep-runner: why the run was stopped, when it is")


@pytest.hookimpl(trylast=True)  # after pytest-rerunfailures has opened its socket
def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_Recorder(config.getoption("tep_nodeids_file")), "tep-recorder")
    progress = config.getoption("tep_progress_file")
    if progress and not hasattr(config, "workerinput"):  # the controller (or the one process without xdist)
        config.pluginmanager.register(
            _Progress(config, progress, config.getoption("tep_stop_file")), "tep-progress"
        )
    # Under xdist, pytest-rerunfailures (16.7) asks the controller about every test over a TCP socket with
    # two small writes before each read; Nagle's algorithm and delayed ACKs then stall each test by tens of
    # milliseconds, doubling the time of a suite of short tests whenever --reruns is given.
    sock = getattr(getattr(config, "failures_db", None), "sock", None)
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
