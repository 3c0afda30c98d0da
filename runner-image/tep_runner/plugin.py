"""pytest plugin loaded into every run (`-p tep_runner.plugin`): evidence the JUnit XML does not hold."""

from __future__ import annotations

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


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_Recorder(config.getoption("tep_nodeids_file")), "tep-recorder")
