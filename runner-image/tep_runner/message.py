"""The termination message (docs/design.md section 4): the summary in at most 4096 bytes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

MAX_BYTES = 4096  # Kubernetes truncates a container's termination message beyond this
MAX_FAILED_TESTS = 20
MAX_ID_CHARS = 200
MAX_REASON_CHARS = 1000
KEYS = (
    "result", "total", "passed", "failed", "errors", "skipped", "xfailed", "xpassed", "flaky",
    "durationSeconds", "workers", "shard", "shards", "reportPath",
)  # fmt: skip


# Measures of the run, in the message when the summary has them (a sharded run's imbalance; cpuUtilization).
MEASURES = ("imbalance", "cpuUtilization")


def termination_message(summary: Mapping[str, Any]) -> str:
    """Version 1 of the message: the counts always, the reason when there is one (why a run broke, stopped
    early, or ran nothing); failed and timed-out test ids trimmed until it fits."""
    message: dict[str, object] = {"v": 1, **{key: summary[key] for key in KEYS}}
    message.update({key: summary[key] for key in MEASURES if key in summary})
    reason = _clip(str(summary.get("reason", "")), MAX_REASON_CHARS)
    failed = [_clip(test, MAX_ID_CHARS) for test in summary["failedTests"][:MAX_FAILED_TESTS]]
    # Tests stopped at the deadline or failed by pytest-timeout (also in failedTests); only when there are.
    timed_out = [_clip(test, MAX_ID_CHARS) for test in (summary.get("timedOut") or [])[:MAX_FAILED_TESTS]]
    while True:
        extra = {"reason": reason} if reason else {}
        tail = {"timedOut": timed_out} if timed_out else {}
        text = json.dumps({**message, **extra, "failedTests": failed, **tail}, separators=(",", ":"))
        if len(text.encode()) <= MAX_BYTES:
            return text
        if failed and len(failed) >= len(timed_out):  # trimmed alike
            failed.pop()
        elif timed_out:
            timed_out.pop()
        else:
            reason = _clip(reason, len(reason) // 2)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"
