"""summary.json: the counts from the JUnit XML, the outcome from pytest's exit code."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field

from tep_runner.plugin import WORKERS_LINE
from tep_runner.stopping import Progress, stop_reason

EXIT_CODES = {"Passed": 0, "Failed": 1, "Error": 2}
# pytest's exit codes that mean the run itself broke (https://docs.pytest.org/en/stable/reference/exit-codes.html)
_BROKEN = {2: "interrupted", 3: "pytest internal error", 4: "pytest usage error", 5: "no tests collected"}
_WORKERS = re.compile("^" + re.escape(WORKERS_LINE).replace(r"\{\}", r"(\d+)") + "$", re.MULTILINE)


@dataclass(frozen=True)
class Counts:
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    flaky: int = 0
    failed_tests: tuple[str, ...] = ()  # failed and errored node ids, in report order
    collection_errors: tuple[str, ...] = field(default=())  # files that did not import

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.errors + self.skipped


def counts_from_junit(xml_text: str) -> Counts:
    """Count tests in pytest's JUnit XML (junit_family=xunit1, which records each test's file).

    pytest-rerunfailures records every attempt that was rerun as an extra, empty <testcase> of the same
    test, so one test is the group of its <testcase> elements: failed if any holds <failure>, error if any
    holds <error>, skipped if the last is <skipped>, else passed -- and flaky when it passed after reruns.
    """
    groups: dict[tuple[str, str, str], list[ET.Element]] = {}
    for case in ET.fromstring(xml_text).iter("testcase"):
        if not case.get("name"):  # the test running when pytest was interrupted leaves an empty <testcase/>
            continue
        key = (case.get("file", ""), case.get("classname", ""), case.get("name", ""))
        groups.setdefault(key, []).append(case)
    tally = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0, "flaky": 0}
    failed_tests: list[str] = []
    collection_errors: list[str] = []
    for (file, classname, name), cases in groups.items():
        errors = [e for case in cases for e in case.iter("error")]
        if any(case.find("failure") is not None for case in cases):
            tally["failed"] += 1
        elif errors:
            tally["errors"] += 1
            if any(e.get("message") == "collection failure" for e in errors):
                collection_errors.append(file or name)
        elif cases[-1].find("skipped") is not None:
            tally["skipped"] += 1
            continue
        else:
            tally["passed"] += 1
            tally["flaky"] += len(cases) > 1
            continue
        failed_tests.append(nodeid(file, classname, name))
    return Counts(**tally, failed_tests=tuple(failed_tests), collection_errors=tuple(collection_errors))


def counts_from_progress(progress: Progress) -> Counts:
    """Counts from the plugin's progress record, for a run whose pytest was killed before it wrote junit.xml.

    A test still running then counts as failed (timed out), like the tests the plugin reported stopped.
    """
    outcomes = dict(progress.outcomes) | dict.fromkeys(progress.hit, "failed")
    tally = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0, "flaky": 0}
    failed_tests: list[str] = []
    for test, result in outcomes.items():
        if result in ("failed", "error"):
            tally["failed" if result == "failed" else "errors"] += 1
            failed_tests.append(test)
        elif result == "skipped":
            tally["skipped"] += 1
        elif result in ("passed", "flaky"):
            tally["passed"] += 1
            tally["flaky"] += result == "flaky"
    return Counts(**tally, failed_tests=tuple(failed_tests), collection_errors=())


def nodeid(file: str, classname: str, name: str) -> str:
    """Invert pytest's junit naming: classname is the file's dotted path (no .py) followed by its classes."""
    if not file:
        return "::".join(p for p in (classname, name) if p)
    module = file.removesuffix(".py").replace("/", ".")
    if not classname:  # a collection error: the name is the module's
        return file
    if classname.startswith(module + "."):
        return "::".join([file, *classname[len(module) + 1 :].split("."), name])
    return f"{file}::{name}"


def workers_from_log(log_text: str) -> int:
    """Distinct workers that ran tests, as printed by tep_runner.plugin (0 when no test ran)."""
    found = _WORKERS.findall(log_text)
    return int(found[-1]) if found else 0


def outcome(exit_code: int, counts: Counts, log_text: str) -> tuple[str, str]:
    """(result, reason): Passed, Failed (tests failed) or Error (the run broke; reason says why)."""
    if counts.collection_errors:
        return "Error", f"collection errors in {', '.join(counts.collection_errors[:5])}"
    if exit_code == 0:
        return "Passed", ""
    if exit_code == 1 and counts.failed + counts.errors:
        return "Failed", ""
    if exit_code in _BROKEN:
        why = _BROKEN[exit_code]
    elif exit_code < 0:
        why = f"pytest was killed by signal {-exit_code}"
    else:
        why = f"pytest exited with {exit_code}"
    detail = _detail(log_text.splitlines())
    return "Error", f"{why}: {detail}" if detail else why


def _detail(lines: Iterable[str]) -> str:
    """The line that best says why: the last "error:" line (usage errors end with inifile/rootdir lines)."""
    meaningful = [line.strip() for line in lines if line.strip() and not _WORKERS.match(line.strip())]
    errors = [line for line in meaningful if "error:" in line.lower()]
    return (errors or meaningful or [""])[-1][:300]


def summarize(
    *,
    junit_xml: str | None,
    log_text: str,
    exit_code: int,
    duration_seconds: float,
    shard: int,
    shards: int,
    report_path: str,
    run_id: str,
    start_time: str,
    stopped_by: str = "",
    progress: Progress | None = None,
) -> dict[str, object]:
    """The summary.json document of one pytest run (a shard's, when sharded).

    `stopped_by`: why the runner stopped pytest (stopping.py), "" when pytest ran to its end; `progress`:
    the plugin's record (the tests a stop hit, those pytest-timeout failed; the counts when pytest was killed
    before it wrote junit.xml).
    """
    progress = progress or Progress()
    counts = counts_from_junit(junit_xml) if junit_xml else counts_from_progress(progress)
    result, reason = outcome(exit_code, counts, log_text)
    if stopped_by:
        result, reason = "Error", stop_reason(stopped_by, progress.hit)
    # Without a stop, a test still running when pytest died crashed (counted failed), it did not time out.
    timed_out = list(progress.timed_out if stopped_by else progress.pytest_timeouts)
    failed_tests = [*counts.failed_tests, *(t for t in timed_out if t not in counts.failed_tests)]
    return empty_summary(result, reason, shard, shards, report_path, run_id, start_time) | {
        "total": counts.total,
        "passed": counts.passed,
        "failed": counts.failed,
        "errors": counts.errors,
        "skipped": counts.skipped,
        "flaky": counts.flaky,
        "durationSeconds": round(duration_seconds, 3),
        "workers": workers_from_log(log_text),
        "failedTests": failed_tests,
        "timedOut": timed_out,
        "pytestExitCode": exit_code,
    }


def empty_summary(
    result: str, reason: str, shard: int, shards: int, report_path: str, run_id: str, start_time: str
) -> dict[str, object]:
    """A summary with no tests: the base of every summary, and the whole of one for a run that broke early."""
    return {
        "result": result,
        **({"reason": reason} if reason else {}),
        "total": 0,
        "passed": 0,
        "failed": 0,
        "errors": 0,
        "skipped": 0,
        "flaky": 0,
        "durationSeconds": 0.0,
        "workers": 0,
        "shard": shard,
        "shards": shards,
        "reportPath": report_path,
        "failedTests": [],
        "timedOut": [],  # tests stopped at the deadline or on a signal, and tests failed by pytest-timeout
        "runId": run_id,
        "startTime": start_time,
    }
