from pathlib import Path

from tep_operator.cli import format_table, status_rows
from tep_operator.local import summary_text


def test_status_shows_expected_failures_and_unexpected_passes_apart():
    plan = {
        "metadata": {"name": "smoke", "namespace": "qa"},
        "spec": {"crontab": "*/30 * * * *", "enabled": True},
        "status": {
            "phase": "Scheduled",
            "nextRunTime": "2026-11-21T20:00:00Z",
            "lastRun": {
                "result": "Passed",
                "passed": 6,
                "failed": 0,
                "xfailed": 2,
                "xpassed": 1,
                "skipped": 0,
            },
        },
    }
    header, row = status_rows([plan], all_namespaces=False)
    assert dict(zip(header, row, strict=True)) == {
        "NAME": "smoke", "SCHEDULE": "*/30 * * * *", "ENABLED": "true", "PHASE": "Scheduled",
        "LAST RESULT": "Passed", "PASSED": "6", "FAILED": "0", "XFAILED": "2", "XPASSED": "1",
        "NEXT RUN": "2026-11-21T20:00:00Z",
    }  # fmt: skip
    assert format_table([header, row]).splitlines()[0].startswith("NAME ")


def test_a_local_run_that_ran_nothing_says_why_not_zero_tests():
    reason = "--collect-only: 6 tests collected, none ran"
    message = {"result": "Passed", "total": 0, "reason": reason, "durationSeconds": 0.4, "workers": 0}
    assert summary_text(message, Path("/r")) == f"tep: Passed: {reason} in 0.4s with 0 workers"
    counted = {"result": "Failed", "total": 3, "passed": 1, "failed": 1, "xfailed": 1, "reason": "stopping"}
    assert summary_text(counted, Path("/r")).splitlines() == [
        "tep: Failed: 3 tests, 1 passed, 1 failed, 0 errors, 0 skipped, 1 xfailed, 0 xpassed, 0 flaky "
        "in 0.0s with 0 workers",
        "tep: reason: stopping",
    ]
