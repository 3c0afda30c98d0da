"""The browser's definitions (tep_operator.browser.model) on hand-made histories: one rule per test."""

from datetime import UTC, datetime, timedelta

from tep_operator.browser import model

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def record(i, result, tests, duration=1.0):
    return {"v": 1, "runId": f"r{i}", "startTime": (T0 + timedelta(hours=i)).isoformat(), "result": result,
            "durationSeconds": duration, "tests": {t: [o, s] for t, (o, s) in tests.items()}}  # fmt: skip


def runs_of(*outcomes_per_run, folders=()):
    """outcomes_per_run oldest first, each {test: outcome}; returns the runs newest first."""
    records = [
        record(i, "Failed" if "failed" in o.values() else "Passed", {t: (v, 1.0 + i) for t, v in o.items()})
        for i, o in enumerate(outcomes_per_run)
    ]
    return model.merge_runs(records, {f: None for f in folders})


def row(runs, test):
    return next(r for r in model.grid_rows(runs) if r.test == test)


def test_flaky_by_rerun_or_by_two_flips():
    runs = runs_of(
        {"a": "passed", "b": "passed"}, {"a": "flaky", "b": "failed"}, {"a": "passed", "b": "passed"}
    )
    assert row(runs, "a").reruns == 1 and row(runs, "a").flaky
    assert row(runs, "b").flips == 2 and row(runs, "b").flaky
    once = runs_of({"c": "failed"}, {"c": "passed"})  # fixed once: one flip is not flakiness
    assert not row(once, "c").flaky
    assert [r.test for r in model.rankings(model.grid_rows(runs)).flaky] == ["b", "a"]  # reruns + flips: 2, 1


def test_failing_new_failure_and_absent_runs():
    runs = runs_of(
        {"x": "passed", "y": "failed"},
        {"x": "passed", "y": "error"},
        {"x": "failed"},
        {"x": "failed", "y": "failed"},
    )
    x, y = row(runs, "x"), row(runs, "y")
    assert (
        x.outcomes == ("failed", "failed", "passed", "passed") and x.failing_runs == 2 and not x.new_failure
    )
    assert y.outcomes == ("failed", None, "error", "failed")  # absent from one run: not a verdict
    assert y.failing_runs == 3 and not y.new_failure
    new = runs_of({"z": "passed"}, {"z": "skipped"}, {"z": "failed"})
    assert row(new, "z").new_failure  # failed now, passed the last time it ran (the skip is no verdict)
    ranked = model.rankings(model.grid_rows(runs) + model.grid_rows(new))
    assert [r.test for r in ranked.failing] == ["y", "x"]  # the longest streak first
    assert [r.test for r in ranked.new_failures] == ["z"]
    only = runs_of({"w": "failed"})
    assert row(only, "w").failing_runs == 1 and not row(only, "w").new_failure
    assert [r.test for r in model.rankings(model.grid_rows(only)).failing] == ["w"]


def test_slowest_by_median_and_skips_do_not_count():
    runs = runs_of(
        {"s": "passed", "k": "skipped"}, {"s": "passed", "k": "skipped"}, {"s": "passed", "k": "skipped"}
    )
    assert row(runs, "s").median_seconds == 2.0  # 1.0, 2.0, 3.0 (the helper's durations)
    assert [r.test for r in model.rankings(model.grid_rows(runs)).slowest] == ["s"]


def test_plan_summary_red_since_and_last_passed():
    runs = runs_of({"a": "passed"}, {"a": "passed"}, {"a": "failed"}, {"a": "failed"})
    summary = model.plan_summary("qa", "p", runs)
    assert summary.red and summary.red_runs == 2
    assert summary.red_since == T0 + timedelta(hours=2) and summary.last_passed == T0 + timedelta(hours=1)
    assert summary.pass_rate == 0.5 and [c[1] for c in summary.cells] == [
        "Failed",
        "Failed",
        "Passed",
        "Passed",
    ]
    assert summary.durations == (1.0, 1.0, 1.0, 1.0)  # oldest first, for the sparkline
    assert summary.last is not None and summary.last.tests == {}  # the plans page keeps no per-test data
    green = model.plan_summary("qa", "g", runs_of({"a": "passed"}))
    assert not green.red and green.red_since is None and green.red_runs == 0
    empty = model.plan_summary("qa", "e", [])
    assert not empty.red and empty.pass_rate is None and empty.last is None


def test_merge_runs_adds_folder_runs_and_marks_folders():
    history = [record(0, "Passed", {"a": ("passed", 1.0)})]
    folder_only = record(5, "Failed", {"a": ("failed", 1.0)})
    runs = model.merge_runs(history, {"r0": None, "r5": folder_only})
    assert [(r.run_id, r.has_folder) for r in runs] == [("r5", True), ("r0", True)]
    assert [r.has_folder for r in model.merge_runs(history, {})] == [False]
