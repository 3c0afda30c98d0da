"""pytest plugin loaded into every run (`-p tep_runner.plugin`): the run's record, this shard's share.

The record (`--tep-record FILE`, record.py), written by the controlling process as pytest goes, holds each
report as pytest's own terminal reporter categorises it and, at the end, the lists its final line counts --
so summary.json tells pytest's story, also when pytest is stopped or killed.
"""

from __future__ import annotations

import html
import json
import os
import re
import socket
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
from _pytest.junitxml import LogXML, xml_key
from pytest_html.basereport import BaseReport as _HtmlReport
from pytest_timeout import PYTEST_FAILURE_MESSAGE as _TIMEOUT_MESSAGE  # type: ignore[import-untyped]

from tep_runner import record
from tep_runner.balance import share
from tep_runner.durations import load as load_durations
from tep_runner.ordering import COLLECTION, DURATION, order, refill_chunk
from tep_runner.rewrite import share_rewrites
from tep_runner.stopping import stopped_longrepr
from tep_runner.summary import OUTCOME_PROPERTY, OUTCOMES, XPASSED

# A test failed by pytest-timeout (signal method) says so in its failure text.
_TIMED_OUT = re.compile(re.escape(_TIMEOUT_MESSAGE).replace(re.escape("%s"), r"[0-9.]+"))


def _category(config: pytest.Config, report: pytest.CollectReport | pytest.TestReport) -> str:
    """The list of pytest's final line the terminal reporter files the report in ("" for none)."""
    if not getattr(report, "count_towards_summary", True):
        return ""
    category, _, _ = config.hook.pytest_report_teststatus(report=report, config=config)
    return str(category)


class _Recorder:
    """In the controller (xdist forwards its workers' hooks there): the run's record, and the tests running.

    When the runner stops pytest (SIGINT at the deadline or on a signal), each test still running is
    reported failed through pytest_runtest_logreport, so pytest's final line, junit.xml and report.html all
    count it; the cause is the text of `stop_file`, written by the runner before it signals pytest.
    """

    def __init__(self, config: pytest.Config, path: str, stop_file: str | None) -> None:
        self.config = config
        self.stop_file = stop_file
        self.workers: set[str] = set()
        self.interrupted = ""
        self.collected = 0
        self.running: dict[str, tuple[str, int | None, str]] = {}  # node id -> location, in start order
        # Appended line by line, unbuffered: whatever is in the file when pytest is killed is complete.
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC, 0o644)
        self._write(
            record.BEGIN,
            rootdir=str(config.rootpath),
            configFile=str(config.inipath) if config.inipath and config.inipath.is_file() else "",
            maxfail=config.option.maxfail,
            collectOnly=bool(config.option.collectonly),
        )

    def _write(self, event: str, **fields: Any) -> None:
        os.write(self.fd, record.line(event, **fields).encode())

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self._write(record.COLLECTED, count=len(session.items))  # without xdist

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, ids: list[str]) -> None:
        self._write(record.COLLECTED, count=len(ids))

    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        self.running[nodeid] = location
        self._write(record.START, nodeid=nodeid)

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        self.running.pop(nodeid, None)
        self._write(record.FINISH, nodeid=nodeid)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # xdist attaches the worker that produced a report as `report.node`; without xdist there is none.
        # The plugin's own reports of stopped tests come from no worker.
        node = getattr(report, "node", None)
        worker = (
            "" if getattr(report, "tep_stopped", False) else node.gateway.id if node is not None else "main"
        )
        if worker:
            self.workers.add(worker)
        if report.when == "teardown":  # a crashed worker's test gets no logfinish (see _CrashTeardown)
            self.running.pop(report.nodeid, None)
        self._write(
            record.REPORT,
            nodeid=report.nodeid,
            when=report.when,
            category=_category(self.config, report),
            worker=worker,
            timedOut=report.failed and bool(_TIMED_OUT.search(report.longreprtext)),
        )

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed or report.skipped:
            traceback = report.longreprtext[-record.TRACEBACK_CHARS :] if report.failed else None
            category = _category(self.config, report)
            self._write(record.COLLECT, nodeid=report.nodeid, category=category, traceback=traceback)
        # pytest stops at a collection error (unless --continue-on-collection-errors); xdist runs the other
        # tests regardless. Stop it the same way, so the run judges what bare pytest judges.
        dsession = self.config.pluginmanager.getplugin("dsession")
        if report.failed and dsession is not None and not self.config.option.continue_on_collection_errors:
            dsession.shouldstop = dsession.shouldstop or "error during collection"

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        # Ctrl-C, SIGTERM, the runner's stop, or xdist's way of stopping at --maxfail ("stopping after 1
        # failures").
        self.interrupted = str(excinfo.value) or excinfo.typename
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
        self._write(record.STOPPED, nodeids=[nodeid for nodeid, _ in stopped])

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.collected = session.testscollected

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        stats: dict[str, list[Any]] = getattr(reporter, "stats", {})
        self._write(
            record.END,
            reports={
                category: [r.nodeid for r in found if getattr(r, "count_towards_summary", True)]
                for category, found in stats.items()
                if category not in record.NOT_OUTCOMES
            },
            # Each file (or folder) that did not collect, with the end of its traceback.
            collectionErrors={
                r.nodeid: r.longreprtext[-record.TRACEBACK_CHARS :]
                for r in stats.get("error", [])
                if isinstance(r, pytest.CollectReport)
            },
            collected=self.collected,
            interrupted=self.interrupted,
            workers=len(self.workers),
        )
        os.close(self.fd)

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report: pytest.TestReport) -> None:
        # xdist reports a test that killed its worker with when="???"; JUnit then files it as an error while
        # pytest's own line says failed. It is the test's call that never returned.
        report.when = "call"


_COLLECTOR = "tep_collector"  # a collection report's attribute, carried from the worker to the controller


class _CollectorIndex:
    """In each xdist worker: number the worker's failed or skipped collection reports of each node id.

    One file can be collected twice (a test module, and its doctests under --doctest-modules); a module-level
    skip or import error then ends both, and bare pytest reports (and counts) the file twice. The number lets
    the controller tell the second collector of a file from another worker's report of the first.

    Every shard collects the whole suite, so a file skipped at import would be skipped in each shard's
    counts: only shard 0 reports it (a skip passes on to xdist no further than a passing collector does).
    """

    def __init__(self, shard: int) -> None:
        self.shard = shard
        self.seen: dict[str, int] = {}

    @pytest.hookimpl(tryfirst=True)  # before xdist sends the report to the controller
    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.skipped and self.shard:
            report.outcome = "passed"  # its result, the items collected, is empty
        elif not report.passed:
            index = self.seen[report.nodeid] = self.seen.get(report.nodeid, -1) + 1
            setattr(report, _COLLECTOR, index)


class _Distinct:
    """Equal only to itself: xdist keeps one collection report per distinct longrepr, and the two collectors
    of one file fail with equal texts, or skip with equal (path, line, reason)."""

    __hash__ = object.__hash__

    def __eq__(self, other: object) -> bool:
        return self is other

    def __ne__(self, other: object) -> bool:
        return self is not other


class _DistinctText(_Distinct, str):
    pass


class _DistinctSkip(_Distinct, tuple):  # type: ignore[type-arg]
    pass


class _OneCollectionReport:
    """Every xdist worker collects, so each reports every file that fails to collect or is skipped; xdist
    keeps one report per distinct `longrepr`: after deserialisation an equal text for an error, an equal
    tuple for a skip, whichever collector of the file it came from. Hand xdist the first report of each
    (node id, collector) again, and make the longrepr of each kept one distinct, so the run reports each
    collector once, as bare pytest does."""

    def __init__(self) -> None:
        self.kept: dict[tuple[str, int], pytest.CollectReport] = {}

    @pytest.hookimpl(wrapper=True)
    def pytest_report_from_serializable(self) -> Generator[None, object, object]:
        report = yield
        if not isinstance(report, pytest.CollectReport) or report.passed:
            return report
        kept = self.kept.setdefault((report.nodeid, getattr(report, _COLLECTOR, 0)), report)
        if kept is report and isinstance(report.longrepr, str):
            report.longrepr = _DistinctText(report.longrepr)
        elif kept is report and isinstance(report.longrepr, tuple):
            report.longrepr = _DistinctSkip(report.longrepr)
        return kept


class _AsTheFinalLine:
    """report.html and junit.xml hold the reports pytest's final line counts, where on their own they do not.

    pytest-html (4.2) leaves out a skipped collector (a module-level skip, in the final line and junit.xml),
    and files a test's reports by (phase, outcome): of a test's subtests (pytest 9) only the last report of
    each outcome stayed, and a passing subtest gave a failed test a Passed row. JUnit counts every subtest
    report, those the final line leaves out (passed ones, and skipped ones at the default verbosity): more
    than 20,000 "tests" for a suite of 765, and a <skipped> in a test that passed. Now each subtest report
    the final line counts is a row of its own (and stays in junit.xml: every failed subtest is a <failure>
    of its test); one it does not count is in neither. This uses pytest-html's and junitxml's private row
    and count code, whose versions requirements.lock pins."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        # Registered by pytest-html's pytest_configure, which runs before the plugin's (trylast).
        self.page: Any = next(
            (p for p in config.pluginmanager.get_plugins() if isinstance(p, _HtmlReport)), None
        )

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.skipped and self.page is not None:  # pytest-html files only collection errors
            self.page._process_report(report, 0, [])

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> Generator[None, None, None]:
        if not isinstance(report, pytest.SubtestReport):
            yield
            xml = self.config.stash.get(xml_key, None)
            if isinstance(xml, LogXML) and _category(self.config, report) == XPASSED:
                # JUnit has no xpassed: its <testcase> is a pass; the property keeps the final line's word
                xml.node_reporter(report).add_property(OUTCOME_PROPERTY, XPASSED)
            return
        page, xml = self.page, self.config.stash.get(xml_key, None)
        filed = dict(page._reports[report.nodeid]) if page is not None else {}
        counted = _category(self.config, report) in OUTCOMES
        if isinstance(xml, LogXML) and not counted:
            reporter = xml.node_reporter(report)
            stats, elements = dict(xml.stats), len(reporter.nodes)
        yield
        if page is not None:
            page._reports[report.nodeid] = filed  # as before the subtest: it gets a row of its own, or none
            if counted:
                page._process_report(report, report.duration, [])
        if isinstance(xml, LogXML) and not counted:
            xml.stats.update(stats)
            del reporter.nodes[elements:]

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        """A subtest's row names it after its test, as pytest's own SUBFAILED line does."""
        if isinstance(report, pytest.SubtestReport):
            test_id = f"{report.nodeid} {report._sub_test_description()}"
            cells[:] = [
                f'<td class="col-testId">{html.escape(test_id)}</td>'
                if cell.startswith('<td class="col-testId">')
                else cell
                for cell in cells
            ]


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


def _shard(option: str | None) -> tuple[int, int]:
    """(index, shards) of --tep-shard INDEX/SHARDS; unsharded (0, 1)."""
    index, shards = option.split("/") if option else ("0", "1")
    return int(index), int(shards)


_DIST, _MAXSCHEDCHUNK = "tep_dist", "tep_maxschedchunk"  # keys of xdist's workerinput


class _Arrange:
    """This shard's share of the tests pytest selected, in the order xdist should hand them out.

    Every process that collects (each xdist worker; the one process without xdist) computes the same share
    and the same order from the same collection and the durations file the runner wrote (durations.py):
    xdist requires every worker's collection to be identical.
    """

    def __init__(self, config: pytest.Config, shard: str, split_file: str, durations_file: str) -> None:
        self.index, self.shards = _shard(shard)
        self.split_file = split_file
        self.durations = load_durations(Path(durations_file)) if durations_file else {}
        self.config = config
        # A worker's own options say dist "no": the controller hands its scheduling down (below).
        workerinput = getattr(config, "workerinput", None)
        self.workers = int(workerinput["workercount"]) if workerinput else 1
        self.dist = str(workerinput.get(_DIST, "no")) if workerinput else "no"
        self.maxschedchunk: int | None = workerinput.get(_MAXSCHEDCHUNK) if workerinput else None
        self.order = config.getoption("tep_order") == DURATION
        workers = config.getoption("numprocesses", None)  # xdist has made "auto" a number by now
        if (
            not workerinput
            and self.order
            and self.durations
            and config.getoption("dist", "no") == "load"
            and config.option.maxschedchunk is None  # the plan's own setting wins
            and isinstance(workers, int)
            and workers > 1
        ):
            config.option.maxschedchunk = refill_chunk(len(self.durations), workers)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """In the controller, for each xdist worker it starts: the scheduling the order is arranged for."""
        node.workerinput[_DIST] = self.config.getoption("dist", "no")
        node.workerinput[_MAXSCHEDCHUNK] = self.config.getoption("maxschedchunk", None)

    @pytest.hookimpl(trylast=True)  # after -k, -m and the suite's own hooks have selected
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        if self.shards > 1:
            mine = set(share([item.nodeid for item in items], self.durations, self.shards, self.index))
            if self.split_file:
                Path(self.split_file).write_text(json.dumps({"selected": len(items), "mine": len(mine)}))
            items[:] = [item for item in items if item.nodeid in mine]
        if self.order:
            by_id = {item.nodeid: item for item in items}
            arranged = order(list(by_id), self.durations, self.dist, self.workers, self.maxschedchunk)
            if len(arranged) == len(items):  # (duplicate node ids: leave the collection as it is)
                items[:] = [by_id[nodeid] for nodeid in arranged]


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
    group.addoption(
        "--tep-rewrite-cache", default=None, help="tep-runner: the run's folder of shared assert rewrites"
    )
    group.addoption("--tep-stop-file", default=None, help="tep-runner: why the run was stopped, when it is")
    group.addoption("--tep-shard", default=None, help="tep-runner: run share INDEX/SHARDS of the tests")
    group.addoption("--tep-split-file", default=None, help="tep-runner: write the shard's split here")
    group.addoption(
        "--tep-durations", default=None, help="tep-runner: expected test durations: split and order by them"
    )
    group.addoption("--tep-order", default=COLLECTION, help="tep-runner: duration: the longest tests first")


@pytest.hookimpl(trylast=True)  # after pytest-rerunfailures has opened its socket
def pytest_configure(config: pytest.Config) -> None:
    worker = hasattr(config, "workerinput")  # an xdist worker: the controller keeps the record
    rewrites = config.getoption("tep_rewrite_cache")
    if rewrites:  # before the test modules are collected (and rewritten) in each process
        share_rewrites(Path(rewrites))
    record_file = config.getoption("tep_record")
    if record_file and not worker:
        config.pluginmanager.register(
            _Recorder(config, record_file, config.getoption("tep_stop_file")), "tep-recorder"
        )
        config.pluginmanager.register(_CrashTeardown(config), "tep-crash-teardown")
        config.pluginmanager.register(_OneCollectionReport(), "tep-one-collection-report")
        config.pluginmanager.register(_AsTheFinalLine(config), "tep-as-the-final-line")
    shard, durations = config.getoption("tep_shard"), config.getoption("tep_durations")
    if worker:
        config.pluginmanager.register(_CollectorIndex(_shard(shard)[0]), "tep-collector-index")
    if shard or durations:
        split_file = config.getoption("tep_split_file") or ""
        config.pluginmanager.register(
            _Arrange(config, shard or "", split_file, durations or ""), "tep-arrange"
        )
    # Under xdist, pytest-rerunfailures (16.7) asks the controller about every test over a TCP socket with
    # two small writes before each read; Nagle's algorithm and delayed ACKs then stall each test by tens of
    # milliseconds, doubling the time of a suite of short tests whenever --reruns is given.
    sock = getattr(getattr(config, "failures_db", None), "sock", None)
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
