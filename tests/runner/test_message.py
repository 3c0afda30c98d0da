import json

from tep_runner.message import MAX_BYTES, termination_message

SUMMARY = {
    "result": "Failed",
    "total": 2500,
    "passed": 500,
    "failed": 2000,
    "errors": 0,
    "skipped": 0,
    "xfailed": 4,
    "xpassed": 1,
    "flaky": 3,
    "durationSeconds": 612.4,
    "workers": 6,
    "shard": 0,
    "shards": 1,
    "reportPath": "qa/smoke/20261121T194200Z-29012345/report.html",
    "failedTests": [
        f"tests/api/test_orders_{i // 50}.py::TestOrders::test_order_state[case-{i}]" for i in range(2000)
    ],
    "runId": "20261121T194200Z-29012345",
}


def test_design_shape_and_key_order():
    message = json.loads(
        termination_message(SUMMARY | {"total": 9, "passed": 9, "failed": 0, "failedTests": []})
    )
    assert list(message) == [
        "v", "result", "total", "passed", "failed", "errors", "skipped", "xfailed", "xpassed", "flaky",
        "durationSeconds", "workers", "shard", "shards", "reportPath", "failedTests",
    ]  # fmt: skip
    assert message["v"] == 1


def test_2000_failing_tests_fit_and_keep_the_counts():
    text = termination_message(SUMMARY)
    message = json.loads(text)
    assert len(text.encode()) <= MAX_BYTES
    assert (message["total"], message["failed"], message["flaky"]) == (2500, 2000, 3)
    assert (message["xfailed"], message["xpassed"]) == (4, 1)
    assert message["failedTests"] == SUMMARY["failedTests"][:20]


def test_long_ids_are_truncated_and_dropped_until_it_fits():
    ids = [f"tests/test_x.py::test_param[{'é' * 5000}-{i}]" for i in range(2000)]
    text = termination_message(SUMMARY | {"failedTests": ids})
    message = json.loads(text)
    assert len(text.encode()) <= MAX_BYTES
    assert 1 <= len(message["failedTests"]) <= 20
    assert all(len(test) <= 200 and test.endswith("…") for test in message["failedTests"])


def test_error_carries_a_reason_that_also_fits():
    text = termination_message(SUMMARY | {"result": "Error", "reason": "\x01" * 10000})
    message = json.loads(text)
    assert len(text.encode()) <= MAX_BYTES
    assert message["reason"].startswith("\x01")
    # A run that stopped early or ran nothing says so whatever its result; no reason, no key.
    stopped = SUMMARY | {"reason": "stopping after 1 failures (-x/--maxfail=1)"}
    assert json.loads(termination_message(stopped))["reason"] == stopped["reason"]
    assert "reason" not in json.loads(termination_message(SUMMARY))
