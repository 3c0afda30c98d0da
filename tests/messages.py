"""The runner's termination message (docs/design.md §4) as tests of the operator feed it in."""

import json
from typing import Any


def runner_message(result: str = "Passed", **fields: Any) -> str:
    """A version-1 summary of 9 passing tests, with `fields` changed."""
    message = {
        "v": 1,
        "result": result,
        "total": 9,
        "passed": 9,
        "failed": 0,
        "errors": 0,
        "skipped": 0,
        "xfailed": 0,
        "xpassed": 0,
        "flaky": 0,
        "durationSeconds": 3.6,
        "workers": 2,
        "shard": 0,
        "shards": 1,
        "reportPath": "qa/smoke/run/report.html",
        "failedTests": [],
    }
    message.update(fields)
    return json.dumps(message)
