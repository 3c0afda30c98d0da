"""pytest plugin loaded into every run (`-p tep_runner.plugin`): evidence the JUnit XML does not hold."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

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
        node = getattr(report, "node", None)
        self.workers.add(node.gateway.id if node is not None else "main")

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        terminalreporter.write_line(WORKERS_LINE.format(len(self.workers)))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--tep-nodeids-file", default=None, help="tep-runner: write the collected node ids here")


@pytest.hookimpl(trylast=True)  # after pytest-rerunfailures has opened its socket
def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_Recorder(config.getoption("tep_nodeids_file")), "tep-recorder")
    # Under xdist, pytest-rerunfailures (16.7) asks the controller about every test over a TCP socket with
    # two small writes before each read; Nagle's algorithm and delayed ACKs then stall each test by tens of
    # milliseconds, doubling the time of a suite of short tests whenever --reruns is given.
    sock = getattr(getattr(config, "failures_db", None), "sock", None)
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
