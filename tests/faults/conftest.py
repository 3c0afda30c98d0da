"""The fault suite: each scenario records what it went through (runs, kills, restarts) as a
user property; the terminal summary prints them, with or without `-s` and under xdist."""

from collections.abc import Iterator

import pytest

from tests.emulator import Emulator, start_emulator
from tests.faults.harness import NAMESPACE

SUMMARY_PROPERTY = "fault_scenario"


@pytest.fixture()
def emulator() -> Iterator[Emulator]:
    kube = start_emulator(namespaces=(NAMESPACE,))
    try:
        yield kube
        errors = kube.server_errors
        assert not errors, f"the emulator had server-side errors: {errors!r}"
    finally:
        kube.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = [
        f"{report.nodeid.split('::')[-1]}: {value}"
        for reports in terminalreporter.stats.values()
        for report in reports
        if isinstance(report, pytest.TestReport) and report.when == "call"
        for name, value in report.user_properties
        if name == SUMMARY_PROPERTY
    ]
    if lines:
        terminalreporter.write_sep("=", "fault scenarios")
        for line in lines:
            terminalreporter.write_line(line)
