"""A plan's run history: one compact record per run that outlives the run folders retention deletes.

The format is defined here once; the runner writes it (`write_run`, under a file lock, when a run ends)
and the report browser (tep_operator.browser) reads it with `read_records`. docs/browser.md describes it.

`<reports root>/<namespace>/<plan>/.history.jsonl`: JSON Lines, oldest first, one record per run:

    {"v": 1, "runId": "...", "startTime": "<ISO 8601>", "trigger": "schedule|manual|local",
     "result": "Passed|Failed|Error", "reason": "...", "durationSeconds": 5.1, "workers": 3, "shards": 1,
     ["cpuUtilization": 0.42, "peakMemoryPerWorker": 81920000, "imbalance": 1.04,]  (when measured)
     "counts": {"total": 9, "passed": 9, "failed": 0, "errors": 0, "skipped": 0, "flaky": 0,
                "xfailed": 0, "xpassed": 0},
     "tests": {"<node id>": ["<outcome>", <seconds>], ...}}

The name starts with a dot, so retention (which leaves hidden names alone) never deletes it. A run's record is
appended (one write): reading and rewriting a history of 200 runs of 400 tests took about 0.13 s each way, at
the end of every run. Readers see the file's last record of each run id, within the bounds as of its newest
record; the file is rewritten within them only when it holds MAX_RUNS + SLACK lines, so it never holds more.
"""

from __future__ import annotations

import json
import os
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tep_runner.runid import job_minutes
from tep_runner.settings import Settings
from tep_runner.summary import OUTCOME_PROPERTY, XPASSED

VERSION = 1
FILE = ".history.jsonl"
LOCK = ".history.lock"
# Bounds of one plan's history: the newest MAX_RUNS records, none older than MAX_AGE_DAYS.
MAX_RUNS = 200
MAX_AGE_DAYS = 90
SLACK = 50  # records appended beyond MAX_RUNS before the file is rewritten within the bounds

# One test's outcome in one run. "flaky": failed, then passed on a rerun (pytest-rerunfailures); "xpassed":
# marked xfail and passed (a pass in JUnit, named by the runner's property).
PASSED, FAILED, ERROR, SKIPPED, XFAILED, FLAKY = "passed", "failed", "error", "skipped", "xfailed", "flaky"
OUTCOMES = (PASSED, FAILED, ERROR, SKIPPED, XFAILED, XPASSED, FLAKY)
COUNTS = ("total", "passed", "failed", "errors", "skipped", "flaky", "xfailed", "xpassed")
# Measures of the run kept when its summary has them (adaptive.py and balance.py read them back).
MEASURES = ("cpuUtilization", "peakMemoryPerWorker", "imbalance")
TRIGGER_SCHEDULE, TRIGGER_MANUAL, TRIGGER_LOCAL = "schedule", "manual", "local"
TIMED_OUT_MESSAGE = "stopped by the deadline"


@dataclass(frozen=True)
class Result:
    """One test in one run, from the run's junit.xml (the group of its <testcase> elements)."""

    outcome: str
    seconds: float
    message: str  # the failure's or error's message ("" when it passed)


def trigger_of(job_name: str, run_id: str) -> str:
    """How the run started: a CronJob's Job (name ends in -<minutes>, no TEP_RUN_ID), a run-now Job, local."""
    if not job_name:
        return TRIGGER_LOCAL
    return TRIGGER_SCHEDULE if job_minutes(job_name) is not None and not run_id else TRIGGER_MANUAL


def tests_from_junit(xml_text: str) -> dict[str, Result]:
    """Each test of pytest's JUnit XML (xunit1), by node id.

    pytest-rerunfailures adds a <testcase> for each rerun attempt: a test with several whose last passed
    is flaky (summary.json's flaky: "rerun", then "passed"); otherwise the worst attempt decides. The
    duration is the sum over attempts.
    """
    return {key: _result(cases) for key, cases in junit_attempts(xml_text).items()}


def junit_attempts(xml_text: str) -> dict[str, list[ET.Element]]:
    """Each test's <testcase> elements, by node id: pytest-rerunfailures leaves one per attempt."""
    groups: dict[str, list[ET.Element]] = {}
    for case in ET.fromstring(xml_text).iter("testcase"):
        if not case.get("name"):  # the test running when pytest was interrupted leaves an empty <testcase/>
            continue
        key = nodeid(case.get("file", ""), case.get("classname", ""), case.get("name", ""))
        groups.setdefault(key, []).append(case)
    return groups


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


def _result(cases: Sequence[ET.Element]) -> Result:
    seconds = round(sum(float(case.get("time") or 0) for case in cases), 3)
    last = cases[-1]
    problems = [p for case in cases for p in (*case.iter("failure"), *case.iter("error"))]
    if len(cases) > 1 and _passed(last):  # the rerun attempts' <testcase> elements are often empty
        return Result(FLAKY, seconds, _message(problems[0]) if problems else "passed on a rerun")
    for tag, outcome in (("failure", FAILED), ("error", ERROR)):
        found = [p for case in cases for p in case.iter(tag)]
        if found:
            return Result(outcome, seconds, _message(found[-1]))
    skipped = last.find("skipped")
    if skipped is not None:
        outcome = XFAILED if skipped.get("type") == "pytest.xfail" else SKIPPED
        return Result(outcome, seconds, skipped.get("message", ""))
    if any(p.get("name") == OUTCOME_PROPERTY and p.get("value") == XPASSED for p in last.iter("property")):
        return Result(XPASSED, seconds, "")
    return Result(PASSED, seconds, "")


def _passed(case: ET.Element) -> bool:
    return case.find("failure") is None and case.find("error") is None and case.find("skipped") is None


def _message(element: ET.Element) -> str:
    """The message attribute; for a collection error (whose message is only "collection failure") or none,
    the text's last "E   ..." line (the exception), else its last line."""
    message = element.get("message") or ""
    if message in ("", "collection failure"):
        lines = [line.strip() for line in (element.text or "").splitlines() if line.strip()]
        exceptions = [line[1:].strip() for line in lines if line.startswith("E ")]
        message = (exceptions or lines or [message])[-1]
    return message[:500]


def build_record(summary: Mapping[str, Any], tests: Mapping[str, Result], trigger: str) -> dict[str, Any]:
    """One history record from a run's summary.json and its tests; keys missing from the summary count 0."""
    results = dict(tests)
    for test in summary.get("timedOut") or []:  # the tests a deadline stopped may be absent from the XML
        old = results.get(test)
        results[test] = Result(FAILED, old.seconds if old else 0.0, TIMED_OUT_MESSAGE)
    return {
        "v": VERSION,
        "runId": str(summary.get("runId", "")),
        "startTime": str(summary.get("startTime", "")),
        "trigger": trigger,
        "result": str(summary.get("result", "Error")),
        "reason": str(summary.get("reason", "")),
        "durationSeconds": float(summary.get("durationSeconds") or 0),
        "workers": int(summary.get("workers") or 0),
        "shards": int(summary.get("shards") or 1),
        "counts": {key: int(summary.get(key) or 0) for key in COUNTS},
        **{key: summary[key] for key in MEASURES if isinstance(summary.get(key), int | float)},
        "tests": {test: [r.outcome, r.seconds] for test, r in results.items()},
    }


def trim(records: Sequence[Mapping[str, Any]], now: datetime) -> list[Mapping[str, Any]]:
    """The records within the bounds: by start time, newest MAX_RUNS, none older than MAX_AGE_DAYS."""
    cutoff = now - timedelta(days=MAX_AGE_DAYS)
    kept = [r for r in records if (_time(r) or now) >= cutoff]
    kept.sort(key=lambda r: (r.get("startTime", ""), r.get("runId", "")))
    return kept[-MAX_RUNS:]


def append(records: Sequence[Mapping[str, Any]], record: Mapping[str, Any], now: datetime) -> list[Any]:
    """`records` with `record` added (replacing one of the same run id: a rewrite is idempotent), trimmed."""
    others = [r for r in records if r.get("runId") != record["runId"]]
    return trim([*others, record], now)


def current(records: Sequence[Mapping[str, Any]]) -> list[Any]:
    """The history that records in file order hold: the last one of each run id, within the bounds as of the
    newest record (as a write then trimmed them). With no record's time known, the age bound drops none."""
    last = list({str(r.get("runId")): r for r in records}.values())
    newest = max(filter(None, map(_time, last)), default=None)
    return trim(last, newest or datetime.now().astimezone())


def parse(text: str) -> list[dict[str, Any]]:
    """The records of a history file; lines that are not records of this version are skipped."""
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line being appended, or cut short by a crash: never fail a read
            continue
        if isinstance(record, dict) and record.get("v") == VERSION and record.get("runId"):
            records.append(record)
    return records


def dumps(records: Iterable[Mapping[str, Any]]) -> str:
    return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)


def read_records(plan_dir: Path) -> list[dict[str, Any]]:
    """The plan's history, oldest first, within the bounds ([] when it has none)."""
    try:
        return current(parse((plan_dir / FILE).read_text(errors="replace")))
    except FileNotFoundError:
        return []


def write_run(plan_dir: Path, run_dir: Path, settings: Settings, say: Callable[[str], None]) -> None:
    """Add the finished run in `run_dir` to the plan's history, under the plan's history lock.

    A history that cannot be written is said and otherwise ignored: it never changes the run's verdict.
    """
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
        junit = run_dir / "junit.xml"
        tests = tests_from_junit(junit.read_text()) if junit.exists() else {}
        record = build_record(summary, tests, trigger_of(settings.job_name, settings.run_id))
        # Here, not at the top: filelock loads logging and a dozen modules of its own (about 20 ms), and the
        # runner imports this module before pytest starts.
        from filelock import FileLock

        path = plan_dir / FILE
        with FileLock(plan_dir / LOCK):
            try:
                held = path.read_bytes()
            except FileNotFoundError:
                held = b""
            if held.count(b"\n") < MAX_RUNS + SLACK:
                # One write(2) of the whole line, after a newline if a crash cut the last line short.
                line = (b"\n" if held and not held.endswith(b"\n") else b"") + dumps([record]).encode()
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    os.write(fd, line)
                finally:
                    os.close(fd)
                return
            records = append(
                current(parse(held.decode(errors="replace"))), record, datetime.now().astimezone()
            )
            temporary = plan_dir / f".{FILE}.{secrets.token_hex(4)}"
            temporary.write_text(dumps(records))
            os.replace(temporary, path)
    except (OSError, ValueError, ET.ParseError) as e:
        say(f"history: cannot record the run: {e}")


def _time(record: Mapping[str, Any]) -> datetime | None:
    try:
        when = datetime.fromisoformat(str(record.get("startTime", "")))
    except ValueError:
        return None
    return when if when.tzinfo else None
