"""Stopping a run before pytest ends: the budget, the words for why, and the plugin's progress record.

A run is stopped at its deadline (TEP_ACTIVE_DEADLINE_SECONDS, the runner's own timer) or on SIGTERM
(the kubelet at the pod's activeDeadlineSeconds, and `kubectl delete pod`, an eviction, a drain) or SIGINT
(Ctrl-C). The runner then asks pytest to stop (SIGINT); tep_runner.plugin reports each test still running
as failed, so pytest's final line, junit.xml and report.html count it, and records it here. Pure: the
shell (shell.py) reads and writes the files; summary.py counts from the record.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# After asking pytest to stop, the runner waits this long for it to write its reports and exit, then kills
# it and writes the summary from the progress record itself. The pod's terminationGracePeriodSeconds
# (tep_operator.cronjob) is this plus the time to write the summary and the termination message.
STOP_SECONDS = 30
# How long the runner waits for the plugin's STOPPED record before it gives up on killing the xdist workers
# early (they then go by xdist's own teardown: 5 s for an interruptible test, 10 s before it kills them).
ACK_SECONDS = 5
# Stopped tests named in a reason; all of them are in timedOut and failedTests.
MAX_NAMED = 5

# The progress record: one JSON object a line, appended by the plugin in the pytest controller.
START, FINISH, REPORT, STOPPED = "start", "finish", "report", "stopped"


def deadline_cause(seconds: int) -> str:
    return f"activeDeadlineSeconds ({seconds} s) exceeded"


def signal_cause(signum: int, elapsed: float, deadline: int | None) -> str:
    """Why, in the runner's words, when a signal stops the run: what it knows, not what it guesses.

    SIGTERM comes from the kubelet at the pod's activeDeadlineSeconds, and also from a deletion, an eviction
    or a drain; the operator, which sees the pod's status.reason, names the deadline when it was that.
    """
    name = signal.Signals(signum).name
    cause = f"stopped by {name} after {elapsed:.1f} s"
    if signum == signal.SIGTERM and deadline is not None:
        cause += f" (activeDeadlineSeconds is {deadline} s)"
    return cause


def stop_reason(cause: str, stopped: Sequence[str]) -> str:
    """The run's reason: the cause and the tests it stopped."""
    if not stopped:
        return f"{cause}; no test was running (stopped during collection, a fixture or the session's end)"
    named = ", ".join(stopped[:MAX_NAMED])
    more = f" and {len(stopped) - MAX_NAMED} more" if len(stopped) > MAX_NAMED else ""
    return f"{cause}; stopped while running {named}{more}"


def stopped_longrepr(cause: str) -> str:
    """The failure text of a test the runner stopped (junit.xml, report.html, pytest's summary)."""
    return f"tep-runner stopped this test before it finished: {cause}"


def record(event: str, **fields: object) -> str:
    """One line of the progress record."""
    return json.dumps({"event": event, **fields}) + "\n"


@dataclass(frozen=True)
class Progress:
    """What the plugin recorded: enough for a summary when pytest had to be killed before writing its own."""

    running: tuple[str, ...] = ()  # started and neither finished nor reported stopped, in start order
    outcomes: dict[str, str] = field(default_factory=dict)  # node id -> passed, failed, error, skipped, flaky
    stopped: tuple[str, ...] = ()  # reported failed by the plugin when the runner stopped pytest
    acknowledged: bool = False  # the plugin wrote its STOPPED record
    pytest_timeouts: tuple[str, ...] = ()  # failed by pytest-timeout

    @property
    def hit(self) -> tuple[str, ...]:
        """The tests a stop hit: those reported stopped, and those still running when pytest was killed."""
        return self.stopped + self.running

    @property
    def timed_out(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.hit + self.pytest_timeouts))


def read_progress(lines: Iterable[str]) -> Progress:
    """Parse the record; a line cut short by a kill is skipped."""
    started: dict[str, None] = {}
    finished: set[str] = set()
    outcomes: dict[str, str] = {}
    timeouts: dict[str, None] = {}
    stopped: list[str] = []
    acknowledged = False
    for line in lines:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        event, nodeid = entry.get("event"), entry.get("nodeid", "")
        if event == START:
            started[nodeid] = None
        elif event == FINISH:
            finished.add(nodeid)
        elif event == REPORT:
            outcomes[nodeid] = _combine(outcomes.get(nodeid), entry["when"], entry["outcome"])
            if entry.get("timedOut"):
                timeouts[nodeid] = None
        elif event == STOPPED:
            acknowledged = True
            stopped.extend(entry.get("nodeids", []))
    running = tuple(n for n in started if n not in finished and n not in stopped)
    return Progress(running, outcomes, tuple(stopped), acknowledged, tuple(timeouts))


def _combine(before: str | None, when: str, outcome: str) -> str:
    """A test's outcome so far, by the rules summary.counts_from_junit applies to junit.xml."""
    if outcome == "rerun":
        return "rerun"
    if when == "call":
        if outcome == "failed":
            return "failed"
        if before == "rerun" and outcome == "passed":
            return "flaky"
        return outcome  # passed, skipped
    if outcome == "failed" and before != "failed":
        return "error"  # setup or teardown failed
    if outcome == "skipped" and when == "setup":
        return "skipped"
    return before or outcome
