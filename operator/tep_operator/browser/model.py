"""What the browser shows, computed from history records: pure functions, no files, no HTTP.

The definitions below are written on the plan page and in docs/browser.md; they follow TestGrid (a test's
state over its recent columns: PASSING, FAILING, FLAKY) and Allure's history-based flaky marker.
"""

from __future__ import annotations

import dataclasses
import itertools
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tep_runner import history
from tep_runner.runid import run_id_time
from tep_runner.summary import XPASSED

CELLS = 20  # runs shown as cells on the plans page (its pass rate and sparkline cover the same runs)
WINDOW = 30  # runs in a plan page's grid and rankings unless ?runs= says otherwise
RANKED = 10  # tests listed in each ranking
PASS_LIKE = (history.PASSED, XPASSED, history.FLAKY)
FAIL_LIKE = (history.FAILED, history.ERROR)
RESULT_PASSED = "Passed"

DEFINITIONS = {
    "flaky": "passed after a rerun in at least one run of the window (Allure's flaky marker), or flipped "
    "between passed and failed at least twice over the window (TestGrid's FLAKY); ranked by reruns + flips.",
    "failing": "failed (or errored) in its latest run of the window and in the run before it, or in its only "
    "run (TestGrid's FAILING); ranked by how many runs it has been failing.",
    "new failures": "failed (or errored) in its latest run of the window and passed in the run before it.",
    "slowest": "the highest median duration over the runs of the window in which the test ran.",
}


@dataclass(frozen=True)
class Run:
    """One run of a plan: a history record, plus whether its folder is still on the volume."""

    run_id: str
    start: datetime | None
    trigger: str
    result: str
    reason: str
    duration: float
    workers: int
    shards: int
    counts: Mapping[str, int]
    tests: Mapping[str, tuple[str, float]]
    has_folder: bool

    def to_json(self, with_tests: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "runId": self.run_id,
            "startTime": self.start.isoformat() if self.start else None,
            "trigger": self.trigger,
            "result": self.result,
            "reason": self.reason,
            "durationSeconds": self.duration,
            "workers": self.workers,
            "shards": self.shards,
            **self.counts,
            "folder": self.has_folder,
        }
        if with_tests:
            data["tests"] = {t: {"outcome": o, "seconds": s} for t, (o, s) in self.tests.items()}
        return data


def run_from_record(record: Mapping[str, Any], has_folder: bool) -> Run:
    counts = record.get("counts") or {}
    tests = record.get("tests") or {}
    return Run(
        run_id=str(record["runId"]),
        start=_parse_time(str(record.get("startTime", ""))) or run_id_time(str(record["runId"])),
        trigger=str(record.get("trigger", "")),
        result=str(record.get("result", "Error")),
        reason=str(record.get("reason", "")),
        duration=float(record.get("durationSeconds") or 0),
        workers=int(record.get("workers") or 0),
        shards=int(record.get("shards") or 1),
        counts={key: int(counts.get(key) or 0) for key in history.COUNTS},
        tests={
            str(t): (str(v[0]), float(v[1])) for t, v in tests.items() if isinstance(v, list) and len(v) == 2
        },
        has_folder=has_folder,
    )


def merge_runs(
    records: Sequence[Mapping[str, Any]], folders: Mapping[str, Mapping[str, Any] | None]
) -> list[Run]:
    """The plan's runs, newest first: every history record, and folder runs the history does not hold.

    `folders` maps each run folder on the volume to a record built from its files (None: no summary yet).
    """
    runs = {str(r["runId"]): run_from_record(r, str(r["runId"]) in folders) for r in records}
    for run_id, record in folders.items():
        if run_id not in runs and record is not None:
            runs[run_id] = run_from_record(record, True)
    return sorted(runs.values(), key=lambda r: (r.start or datetime.min.astimezone(), r.run_id), reverse=True)


@dataclass(frozen=True)
class PlanSummary:
    """A plan's line on the plans page."""

    namespace: str
    plan: str
    runs: int  # runs known (history and folders)
    last: Run | None
    last_passed: datetime | None
    red_since: datetime | None  # the start of the current streak of runs that did not pass
    red_runs: int  # runs in that streak
    cells: tuple[tuple[str, str, datetime | None], ...]  # (run id, result, start) of the last CELLS runs
    pass_rate: float | None  # over the cells
    durations: tuple[float, ...]  # of the cells, oldest first (the sparkline)
    in_progress: tuple[str, ...] = ()  # run folders without a summary yet

    @property
    def red(self) -> bool:
        return self.last is not None and self.last.result != RESULT_PASSED

    def to_json(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "plan": self.plan,
            "runs": self.runs,
            "lastRun": self.last.to_json() if self.last else None,
            "lastPassed": _iso(self.last_passed),
            "redSince": _iso(self.red_since),
            "redRuns": self.red_runs,
            "recent": [{"runId": i, "result": r, "startTime": _iso(s)} for i, r, s in self.cells],
            "passRate": self.pass_rate,
            "inProgress": list(self.in_progress),
        }


def plan_summary(
    namespace: str, plan: str, runs: Sequence[Run], in_progress: Sequence[str] = ()
) -> PlanSummary:
    """`runs` newest first."""
    recent = runs[:CELLS]
    passed = [r for r in runs if r.result == RESULT_PASSED]
    streak = next((i for i, r in enumerate(runs) if r.result == RESULT_PASSED), len(runs))
    return PlanSummary(
        namespace=namespace,
        plan=plan,
        runs=len(runs),
        last=dataclasses.replace(runs[0], tests={}) if runs else None,  # a thousand summaries stay small
        last_passed=passed[0].start if passed else None,
        red_since=runs[streak - 1].start if streak else None,
        red_runs=streak,
        cells=tuple((r.run_id, r.result, r.start) for r in recent),
        pass_rate=len([r for r in recent if r.result == RESULT_PASSED]) / len(recent) if recent else None,
        durations=tuple(r.duration for r in reversed(recent)),
        in_progress=tuple(in_progress),
    )


@dataclass(frozen=True)
class GridRow:
    """One test across the window: its outcome in each run (None: absent), newest first."""

    test: str
    outcomes: tuple[str | None, ...]
    seconds: tuple[float | None, ...]
    flips: int
    reruns: int  # runs in which it passed only on a rerun
    failing_runs: int  # its current streak of failed runs (0: it did not fail in its latest run)
    new_failure: bool
    median_seconds: float

    @property
    def flaky(self) -> bool:
        return self.reruns > 0 or self.flips >= 2

    def to_json(self, run_ids: Sequence[str]) -> dict[str, Any]:
        return {
            "test": self.test,
            "outcomes": {i: o for i, o in zip(run_ids, self.outcomes, strict=True) if o},
            "flips": self.flips,
            "reruns": self.reruns,
            "flaky": self.flaky,
            "failingRuns": self.failing_runs,
            "newFailure": self.new_failure,
            "medianSeconds": self.median_seconds,
        }


def grid_rows(window: Sequence[Run]) -> list[GridRow]:
    """A row per test that ran in the window (runs newest first), sorted by test id."""
    names = sorted({t for run in window for t in run.tests})
    return [_row(name, window) for name in names]


def _row(name: str, window: Sequence[Run]) -> GridRow:
    found = [run.tests.get(name) for run in window]
    outcomes = tuple(f[0] if f else None for f in found)
    verdicts = [o for o in outcomes if o in PASS_LIKE or o in FAIL_LIKE]  # newest first
    flips = sum((a in FAIL_LIKE) != (b in FAIL_LIKE) for a, b in itertools.pairwise(verdicts))
    failing = next((i for i, o in enumerate(verdicts) if o not in FAIL_LIKE), len(verdicts))
    durations = [f[1] for f in found if f and f[0] not in (history.SKIPPED, history.XFAILED)]
    return GridRow(
        test=name,
        outcomes=outcomes,
        seconds=tuple(f[1] if f else None for f in found),
        flips=flips,
        reruns=outcomes.count(history.FLAKY),
        failing_runs=failing,
        new_failure=failing == 1 and len(verdicts) > 1,
        median_seconds=round(statistics.median(durations), 3) if durations else 0.0,
    )


@dataclass(frozen=True)
class Rankings:
    flaky: list[GridRow] = field(default_factory=list)
    failing: list[GridRow] = field(default_factory=list)
    new_failures: list[GridRow] = field(default_factory=list)
    slowest: list[GridRow] = field(default_factory=list)

    def to_json(self, run_ids: Sequence[str]) -> dict[str, Any]:
        return {
            "definitions": DEFINITIONS,
            **{
                key: [row.to_json(run_ids) for row in rows]
                for key, rows in (
                    ("flaky", self.flaky),
                    ("failing", self.failing),
                    ("newFailures", self.new_failures),
                    ("slowest", self.slowest),
                )
            },
        }


def rankings(rows: Sequence[GridRow]) -> Rankings:
    """The tests to look at first (see DEFINITIONS)."""
    return Rankings(
        flaky=sorted((r for r in rows if r.flaky), key=lambda r: (-(r.reruns + r.flips), r.test))[:RANKED],
        failing=sorted(
            (r for r in rows if r.failing_runs and not r.new_failure), key=lambda r: (-r.failing_runs, r.test)
        )[:RANKED],
        new_failures=[r for r in rows if r.new_failure][:RANKED],
        slowest=sorted((r for r in rows if r.median_seconds > 0), key=lambda r: (-r.median_seconds, r.test))[
            :RANKED
        ],
    )


def _parse_time(text: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo else None


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None
