"""The run's record: what tep_runner.plugin writes in the pytest controller, and what it says once read.

One JSON object a line, appended unbuffered as pytest goes, so that whatever is in the file when pytest is
killed is complete:

- `begin`: the configuration pytest found (rootdir, configFile) and the run's mode (maxfail, collectOnly);
- `collected`: the tests selected to run (this shard's share);
- `start`, `finish`: a test began, ended (the tests running when the runner stops or kills pytest);
- `report`: one report as pytest's terminal reporter categorises it (`category`: the list of pytest's final
  line it counts in, "" for none), the worker that sent it, whether pytest-timeout failed it;
- `collect`: a file (or folder) that failed to collect or was skipped, with the end of its traceback;
- `stopped`: the runner stopped pytest, and the plugin reported these running tests failed;
- `end`: pytest's own tally at its end (terminalreporter.stats): the counts of its final line.

Counts come from `end`; when pytest was killed before it, from the reports recorded so far, a test still
running counting as failed. Pure: the plugin writes lines made here, shell.py reads the file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

BEGIN, COLLECTED, START, FINISH, REPORT, COLLECT, STOPPED, END = (
    "begin", "collected", "start", "finish", "report", "collect", "stopped", "end",
)  # fmt: skip
# The categories of terminalreporter.stats that are not tests' outcomes.
NOT_OUTCOMES = ("", "warnings")
TRACEBACK_CHARS = 2000


def line(event: str, **fields: object) -> str:
    """One line of the record."""
    return json.dumps({"event": event, **fields}) + "\n"


@dataclass(frozen=True)
class Record:
    """The record read back. `tally` has the shape of the `end` line plus `begin`'s fields:
    reports (category -> node ids), collectionErrors (node id -> traceback), collected, workers,
    interrupted, rootdir, configFile, maxfail, collectOnly; {} when pytest wrote nothing."""

    tally: Mapping[str, Any] = field(default_factory=dict)
    running: tuple[str, ...] = ()  # started and neither finished nor reported stopped, in start order
    stopped: tuple[str, ...] = ()  # reported failed by the plugin when the runner stopped pytest
    acknowledged: bool = False  # the plugin wrote its `stopped` line
    pytest_timeouts: tuple[str, ...] = ()  # failed by pytest-timeout

    @property
    def hit(self) -> tuple[str, ...]:
        """The tests a stop hit: those reported stopped, and those still running when pytest was killed."""
        return self.stopped + self.running

    @property
    def timed_out(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.hit + self.pytest_timeouts))


def read_record(lines: Iterable[str]) -> Record:
    """Parse the record; a line cut short by a kill is skipped."""
    begin: dict[str, Any] = {}
    end: dict[str, Any] | None = None
    started: dict[str, None] = {}
    finished: set[str] = set()
    reports: dict[str, list[str]] = {}
    collection_errors: dict[str, str] = {}
    workers: set[str] = set()
    timeouts: dict[str, None] = {}
    stopped: list[str] = []
    collected = 0
    acknowledged = False
    for text in lines:
        try:
            entry = json.loads(text)
        except json.JSONDecodeError:
            continue
        event, nodeid = entry.pop("event", None), entry.get("nodeid", "")
        if event == BEGIN:
            begin = entry
        elif event == COLLECTED:
            collected = int(entry["count"])
        elif event == START:
            started[nodeid] = None
        elif event == FINISH or (event == REPORT and entry.get("when") == "teardown"):
            finished.add(nodeid)
        if event in (REPORT, COLLECT):
            if entry.get("category") not in NOT_OUTCOMES:
                reports.setdefault(entry["category"], []).append(nodeid)
            if entry.get("worker"):
                workers.add(entry["worker"])
            if entry.get("timedOut"):
                timeouts[nodeid] = None
            if entry.get("traceback") is not None:
                collection_errors[nodeid] = entry["traceback"]
        elif event == STOPPED:
            acknowledged = True
            stopped.extend(entry.get("nodeids", []))
        elif event == END:
            end = entry
    running = tuple(n for n in started if n not in finished and n not in stopped)
    if end is None and (begin or started):  # killed: what was recorded so far
        end = {
            "reports": _killed(reports, running),
            "collectionErrors": collection_errors,
            "collected": collected,
            "workers": len(workers),
            "interrupted": "",
        }
    return Record(
        tally={**begin, **(end or {})},
        running=running,
        stopped=tuple(stopped),
        acknowledged=acknowledged,
        pytest_timeouts=tuple(timeouts),
    )


def _killed(reports: Mapping[str, list[str]], running: tuple[str, ...]) -> dict[str, list[str]]:
    """The reports of a killed pytest: a test still running then failed (it crashed, or a stop hit it)."""
    hit = set(running)
    kept = {category: [n for n in found if n not in hit] for category, found in reports.items()}
    return kept | {"failed": [*kept.get("failed", []), *running]}
