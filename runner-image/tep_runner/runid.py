"""Run ids: folder names that sort by time and that every shard of one run agrees on."""

from __future__ import annotations

import re
from datetime import UTC, datetime

TIME_FORMAT = "%Y%m%dT%H%M%SZ"
# CronJob-created Jobs are named <cronjob>-<scheduled time in minutes since the epoch>.
_JOB_SUFFIX = re.compile(r"-(\d{1,10})$")


def job_minutes(job_name: str) -> int | None:
    """The scheduled minute encoded in a CronJob's Job name, or None."""
    match = _JOB_SUFFIX.search(job_name)
    return int(match.group(1)) if match else None


def run_id_for(run_id: str, job_name: str, now: datetime, token: str) -> str:
    """TEP_RUN_ID if set; else derived from the Job name; else the start time and a random token."""
    if run_id:
        return run_id
    minutes = job_minutes(job_name)
    if minutes is not None:
        return f"{datetime.fromtimestamp(minutes * 60, UTC):{TIME_FORMAT}}-{minutes}"
    return f"{now.astimezone(UTC):{TIME_FORMAT}}-{token}"


def run_id_time(run_id: str) -> datetime | None:
    """The time a run id starts with, or None for names that do not start with one."""
    try:
        return datetime.strptime(run_id.split("-", 1)[0], TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None
