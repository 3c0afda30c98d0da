"""pytest plugin loaded into every run (`-p tep_runner.plugin`): the run's record, this shard's share.

The record (`--tep-record FILE`, JSON, written by the controlling process) holds each report as pytest's own
terminal reporter categorised it -- the lists its final line counts -- so summary.json tells pytest's story.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from tep_runner.shards import split

# The categories of terminalreporter.stats that are not tests' outcomes.
_NOT_OUTCOMES = ("", "warnings")
_TRACEBACK_CHARS = 2000


class _Recorder:
    def __init__(self, config: pytest.Config, record_file: str) -> None:
        self.config = config
        self.record_file = record_file
        self.workers: set[str] = set()
        self.interrupted = ""
        self.collected = 0

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # xdist attaches the worker that produced a report as `report.node`; without xdist there is none.
        node = getattr(report, "node", None)
        self.workers.add(node.gateway.id if node is not None else "main")

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        # Ctrl-C, SIGTERM, or xdist's way of stopping at --maxfail ("stopping after 1 failures").
        self.interrupted = str(excinfo.value) or excinfo.typename

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        # pytest stops at a collection error (unless --continue-on-collection-errors); xdist runs the other
        # tests regardless. Stop it the same way, so the run judges what bare pytest judges.
        dsession = self.config.pluginmanager.getplugin("dsession")
        if report.failed and dsession is not None and not self.config.option.continue_on_collection_errors:
            dsession.shouldstop = dsession.shouldstop or "error during collection"

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.collected = session.testscollected

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        stats: dict[str, list[Any]] = getattr(reporter, "stats", {})
        reports = {
            category: [r.nodeid for r in found if getattr(r, "count_towards_summary", True)]
            for category, found in stats.items()
            if category not in _NOT_OUTCOMES
        }
        record = {
            "reports": reports,
            # Each file (or folder) that did not collect, with the end of its traceback.
            "collectionErrors": {
                r.nodeid: r.longreprtext[-_TRACEBACK_CHARS:]
                for r in stats.get("error", [])
                if isinstance(r, pytest.CollectReport)
            },
            "collected": self.collected,
            "collectOnly": bool(config.option.collectonly),
            "interrupted": self.interrupted,
            "maxfail": config.option.maxfail,
            "workers": len(self.workers),
            "rootdir": str(config.rootpath),
            "configFile": str(config.inipath) if config.inipath and config.inipath.is_file() else "",
        }
        Path(self.record_file).write_text(json.dumps(record))

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report: pytest.TestReport) -> None:
        # xdist reports a test that killed its worker with when="???"; JUnit then files it as an error while
        # pytest's own line says failed. It is the test's call that never returned.
        report.when = "call"


class _OneCollectionError:
    """Every xdist worker collects, so a file that fails to collect is reported by each; xdist keeps one per
    distinct `longrepr`, which after deserialisation is a new object each time. Hand xdist the first report
    again, as bare pytest reports the file once."""

    def __init__(self) -> None:
        self.failed: dict[str, pytest.CollectReport] = {}

    @pytest.hookimpl(wrapper=True)
    def pytest_report_from_serializable(self) -> Generator[None, object, object]:
        report = yield
        if isinstance(report, pytest.CollectReport) and report.failed:
            return self.failed.setdefault(report.nodeid, report)
        return report


class _CrashTeardown:
    """pytest-html files a test only at its teardown report, which a crashed worker never sends."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> Generator[None, None, None]:
        yield
        if report.when == "call" and report.failed and _crashed(report):
            teardown = pytest.TestReport(
                nodeid=report.nodeid,
                location=report.location,
                keywords={},
                outcome="passed",
                longrepr=None,
                when="teardown",
            )
            teardown.node = report.node  # type: ignore[attr-defined]
            self.config.hook.pytest_runtest_logreport(report=teardown)


def _crashed(report: pytest.TestReport) -> bool:
    return isinstance(report.longrepr, str) and " crashed while running " in report.longrepr


class _Shard:
    """Keep this shard's share of the tests pytest selected: every shard collects the same way."""

    def __init__(self, index: int, shards: int, split_file: str) -> None:
        self.index, self.shards, self.split_file = index, shards, split_file

    @pytest.hookimpl(trylast=True)  # after -k, -m and the suite's own hooks have selected
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        mine = set(split([item.nodeid for item in items], self.shards, self.index))
        if self.split_file:
            Path(self.split_file).write_text(json.dumps({"selected": len(items), "mine": len(mine)}))
        items[:] = [item for item in items if item.nodeid in mine]


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """Before any conftest or test file is imported: stop a run whose configuration lies above its source.

    A laptop's tests folder may sit inside an unrelated project; a pod's source has nothing above it. The
    runner then runs again without that configuration (the file `--tep-outside` names says why).
    """
    options = early_config.known_args_namespace
    root, outside = options.tep_source_root, options.tep_outside
    if not root or not outside or hasattr(early_config, "workerinput"):
        return
    # Resolved: pytest starts from os.getcwd(), which has no symbolic links in it.
    source = Path(root).resolve()
    found = [
        p
        for p in (early_config.inipath, early_config.rootpath)
        if p and not p.resolve().is_relative_to(source)
    ]
    if found:
        Path(outside).write_text(str(found[0]))
        raise pytest.UsageError(f"tep-runner: {found[0]} is outside the source root {root}")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tep-runner")
    group.addoption("--tep-source-root", default=None, help="tep-runner: the root of the suite's source")
    group.addoption(
        "--tep-outside", default=None, help="tep-runner: say here when the configuration is above it"
    )
    group.addoption("--tep-record", default=None, help="tep-runner: write the run's record here")
    group.addoption("--tep-shard", default=None, help="tep-runner: run share INDEX/SHARDS of the tests")
    group.addoption("--tep-split-file", default=None, help="tep-runner: write the shard's split here")


@pytest.hookimpl(trylast=True)  # after pytest-rerunfailures has opened its socket
def pytest_configure(config: pytest.Config) -> None:
    worker = hasattr(config, "workerinput")  # an xdist worker: the controller keeps the record
    record = config.getoption("tep_record")
    if record and not worker:
        config.pluginmanager.register(_Recorder(config, record), "tep-recorder")
        config.pluginmanager.register(_CrashTeardown(config), "tep-crash-teardown")
        config.pluginmanager.register(_OneCollectionError(), "tep-one-collection-error")
    shard = config.getoption("tep_shard")
    if shard:
        index, shards = (int(n) for n in shard.split("/"))
        config.pluginmanager.register(_Shard(index, shards, config.getoption("tep_split_file") or ""))
    # Under xdist, pytest-rerunfailures (16.7) asks the controller about every test over a TCP socket with
    # two small writes before each read; Nagle's algorithm and delayed ACKs then stall each test by tens of
    # milliseconds, doubling the time of a suite of short tests whenever --reruns is given.
    sock = getattr(getattr(config, "failures_db", None), "sock", None)
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
