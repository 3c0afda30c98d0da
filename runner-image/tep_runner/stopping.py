"""Stopping a run before pytest ends: the budget and the words for why.

A run is stopped at its deadline (TEP_ACTIVE_DEADLINE_SECONDS, the runner's own timer) or on SIGTERM
(the kubelet at the pod's activeDeadlineSeconds, and `kubectl delete pod`, an eviction, a drain) or SIGINT
(Ctrl-C). The runner then asks pytest to stop (SIGINT); tep_runner.plugin reports each test still running
as failed, so pytest's final line, junit.xml and report.html count it, and notes it in the run's record
(record.py). Pure: the shell (shell.py) stops pytest; summary.py says why from these words.
"""

from __future__ import annotations

import signal
from collections.abc import Sequence

# After asking pytest to stop, the runner waits this long for it to write its reports and exit, then kills
# it and writes the summary from the run's record itself. The pod's terminationGracePeriodSeconds
# (tep_operator.cronjob) is this plus the time to write the summary and the termination message.
STOP_SECONDS = 30
# How long the runner waits for the plugin's `stopped` line (record.py) before it gives up on killing the
# xdist workers early (they then go by xdist's own teardown: 5 s for an interruptible test, 10 s before it
# kills them).
ACK_SECONDS = 5
# Stopped tests named in a reason; all of them are in timedOut and failedTests.
MAX_NAMED = 5


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
