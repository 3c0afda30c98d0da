"""summary.json: the counts of pytest's own final line (from the run's record, record.py), the result from
them and pytest's exit code, or from the runner's stop. JUnit XML and report.html are artifacts beside it,
never the source of its counts."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tep_runner.record import Record
from tep_runner.stopping import stop_reason

EXIT_CODES = {"Passed": 0, "Failed": 1, "Error": 2}
# The outcomes of pytest's final line, as summary.json keys (pytest's "error" is "errors"), in its order.
OUTCOMES = {
    "failed": "failed", "passed": "passed", "skipped": "skipped", "xfailed": "xfailed",
    "xpassed": "xpassed", "error": "errors",
}  # fmt: skip
# JUnit has no word for an unexpected pass (its <testcase> is a pass): a <property> gives pytest's.
OUTCOME_PROPERTY, XPASSED = "tep.outcome", "xpassed"
# pytest's exit codes that mean the run itself broke (https://docs.pytest.org/en/stable/reference/exit-codes.html)
_BROKEN = {2: "interrupted", 3: "pytest internal error", 4: "pytest usage error", 5: "no tests collected"}
# What pytest prints when a conftest.py given by the configuration or the first folders fails to import.
_CONFTEST = re.compile(r"^ImportError while loading conftest '(.+)'\.$", re.MULTILINE)
# The frame of a conftest.py in a traceback: the conftest of a folder below failed to import while collecting.
_CONFTEST_FRAME = re.compile(r"^(\S*conftest\.py):\d+: in <module>$", re.MULTILINE)


@dataclass(frozen=True)
class Counts:
    """One run's tally, as pytest's final line counts reports (a test that fails and then errors in its
    teardown is 1 failed and 1 error there); `total` counts each test, and each file that failed to collect,
    once."""

    total: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    xfailed: int = 0
    xpassed: int = 0
    flaky: int = 0  # passed after one or more reruns
    reruns: int = 0  # rerun attempts (pytest-rerunfailures' "rerun" in the final line)
    collected: int = 0  # selected to run: pytest's collected items less those deselected (-k, -m)
    failed_tests: tuple[str, ...] = ()  # failed, then errored, node ids
    collection_errors: tuple[str, ...] = ()  # files (or folders) that did not collect
    collection_error: str = ""  # why the first of them did not


def counts_from_record(record: Mapping[str, Any]) -> Counts:
    """Counts from a record's tally (record.Record.tally)."""
    reports: Mapping[str, list[str]] = record.get("reports", {})
    outcomes = {key: len(reports.get(category, [])) for category, key in OUTCOMES.items()}
    tested = {nodeid for category in OUTCOMES for nodeid in reports.get(category, [])}
    failed = [*reports.get("failed", []), *reports.get("error", [])]
    return Counts(
        total=len(tested),
        **outcomes,
        flaky=len(set(reports.get("passed", [])) & set(reports.get("rerun", []))),
        reruns=len(reports.get("rerun", [])),
        collected=int(record.get("collected", 0)),
        failed_tests=tuple(dict.fromkeys(failed)),
        collection_errors=tuple(record.get("collectionErrors", {})),
        collection_error=next((_why(text) for text in record.get("collectionErrors", {}).values()), ""),
    )


def outcome(
    exit_code: int, counts: Counts, record: Mapping[str, Any] | None, log_text: str, split: Mapping[str, int]
) -> tuple[str, str]:
    """(result, reason): Passed, Failed (tests failed) or Error (the run broke; reason says why)."""
    record = record or {}
    if counts.collection_errors:
        why = f": {counts.collection_error}" if counts.collection_error else ""
        return "Error", f"collection errors in {', '.join(counts.collection_errors[:5])}{why}"
    if exit_code == 0 and record.get("collectOnly"):
        return "Passed", f"--collect-only: {counts.collected} tests collected, none ran"
    if exit_code == 0:
        return "Passed", ""
    if exit_code == 1 and counts.failed + counts.errors:
        return "Failed", ""
    maxfail = int(record.get("maxfail") or 0)
    if exit_code == 2 and maxfail and counts.failed + counts.errors >= maxfail and record.get("interrupted"):
        # xdist stops at -x/--maxfail by interrupting the session (exit 2); pytest alone exits 1.
        return "Failed", f"{record['interrupted']} (-x/--maxfail={maxfail})"
    if exit_code == 5 and split.get("selected") and not split.get("mine"):
        return "Passed", f"no tests in this shard's share of the {split['selected']} tests"
    conftest = _CONFTEST.search(log_text)
    if exit_code == 4 and conftest:
        detail = _detail(log_text[conftest.end() :].splitlines())
        return "Error", f"conftest {conftest.group(1)} failed to import: {detail}"
    if exit_code in _BROKEN:
        why = _BROKEN[exit_code]
    elif exit_code < 0:
        why = f"pytest was killed by signal {-exit_code}"
    else:
        why = f"pytest exited with {exit_code}"
    detail = _detail(log_text.splitlines())
    return "Error", f"{why}: {detail}" if detail else why


def _why(traceback: str) -> str:
    """A collection error in a line: its last line, naming the conftest.py it came from if one."""
    detail = _detail(traceback.splitlines()[-1:])
    conftest = _CONFTEST_FRAME.findall(traceback)
    return f"conftest {conftest[-1]} failed to import: {detail}" if conftest else detail


def _detail(lines: Iterable[str]) -> str:
    """The line that best says why: the last "error:" line (usage errors end with inifile/rootdir lines)."""
    meaningful = [line.strip() for line in lines if line.strip()]
    errors = [line for line in meaningful if "error:" in line.lower()]
    return (errors or meaningful or [""])[-1][:300]


def summarize(
    *,
    record: Record,
    split: Mapping[str, int],
    log_text: str,
    exit_code: int,
    duration_seconds: float,
    shard: int,
    shards: int,
    report_path: str,
    run_id: str,
    start_time: str,
    stopped_by: str = "",
) -> dict[str, object]:
    """The summary.json document of one pytest run (a shard's, when sharded).

    `record`: the run's record (empty when pytest wrote none: it stopped before its session); `split` the
    shard's split ({} unsharded); `stopped_by`: why the runner stopped pytest (stopping.py), "" when pytest
    ran to its end.
    """
    tally = record.tally
    counts = counts_from_record(tally)
    result, reason = outcome(exit_code, counts, tally or None, log_text, split)
    if stopped_by:
        result, reason = "Error", stop_reason(stopped_by, record.hit)
    # Without a stop, a test still running when pytest died crashed (counted failed), it did not time out.
    timed_out = list(record.timed_out if stopped_by else record.pytest_timeouts)
    failed_tests = [*counts.failed_tests, *(t for t in timed_out if t not in counts.failed_tests)]
    extra = {"rootdir": tally["rootdir"], "configFile": tally["configFile"]} if "rootdir" in tally else {}
    return empty_summary(result, reason, shard, shards, report_path, run_id, start_time) | {
        "total": counts.total,
        "passed": counts.passed,
        "failed": counts.failed,
        "errors": counts.errors,
        "skipped": counts.skipped,
        "xfailed": counts.xfailed,
        "xpassed": counts.xpassed,
        "flaky": counts.flaky,
        "reruns": counts.reruns,
        "collected": counts.collected,
        "durationSeconds": round(duration_seconds, 3),
        "workers": int(tally.get("workers", 0)),
        "failedTests": failed_tests,
        "timedOut": timed_out,
        "pytestExitCode": exit_code,
        **extra,
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
        "xfailed": 0,
        "xpassed": 0,
        "flaky": 0,
        "reruns": 0,
        "collected": 0,
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
