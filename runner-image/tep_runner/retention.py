"""Which old runs of a plan to delete: beyond keepLast, or older than maxAgeDays."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from tep_runner.runid import run_id_time

LATEST = "latest"


@dataclass(frozen=True)
class Entry:
    """One name in the plan's folder, as lstat saw it (a symlink is never followed)."""

    name: str
    is_dir: bool  # a real directory, not a link to one
    mtime: datetime


def to_delete(
    entries: Iterable[Entry], current: str, keep_last: int, max_age_days: int, now: datetime
) -> list[Entry]:
    """Newest first by the run id's time (else mtime); the current run is kept and counts toward keep_last.

    Hidden names are the runner's own temporary files (see shell.update_latest) and are left alone.
    """
    runs = [e for e in entries if e.name not in (current, LATEST) and not e.name.startswith(".")]
    runs.sort(key=lambda e: (_time(e), e.name), reverse=True)
    cutoff = now - timedelta(days=max_age_days)
    return [e for i, e in enumerate(runs) if i >= keep_last - 1 or _time(e) < cutoff]


def _time(entry: Entry) -> datetime:
    return run_id_time(entry.name) or entry.mtime
