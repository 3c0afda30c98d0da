from datetime import UTC, datetime, timedelta

from tep_runner.retention import Entry, to_delete

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=30)


def names(entries):
    return sorted(e.name for e in entries)


def test_keep_last_counts_the_current_run():
    entries = [Entry(f"2026112{d}T000000Z-{d}", True, OLD) for d in range(1, 6)] + [
        Entry("latest", False, OLD)
    ]
    doomed = to_delete(entries, "20261125T000000Z-5", keep_last=3, max_age_days=7, now=NOW)
    assert names(doomed) == ["20261121T000000Z-1", "20261122T000000Z-2"]


def test_max_age_by_the_run_id_time_else_mtime():
    entries = [
        Entry("20261101T000000Z-a", True, NOW),  # old by its name, however recent its mtime
        Entry("20261120T000000Z-b", True, OLD),  # recent by its name
        Entry("manual-run", True, OLD),  # no time in the name: mtime decides
        Entry("manual-new", True, NOW),
    ]
    doomed = to_delete(entries, "current", keep_last=20, max_age_days=7, now=NOW)
    assert names(doomed) == ["20261101T000000Z-a", "manual-run"]


def test_never_the_current_run_latest_or_hidden_temporaries():
    entries = [
        Entry("20200101T000000Z-cur", True, OLD),
        Entry("latest", False, OLD),
        Entry(".latest-1a2b", False, OLD),
    ]
    assert to_delete(entries, "20200101T000000Z-cur", keep_last=1, max_age_days=1, now=NOW) == []


def test_links_are_entries_like_any_other():
    link = Entry("20200101T000000Z-link", False, NOW)
    assert to_delete([link], "current", keep_last=20, max_age_days=7, now=NOW) == [link]
