"""When a plan runs next, computed with croniter in the plan's own time zone."""

import datetime as dt
import zoneinfo

from croniter import croniter

UTC = dt.UTC


def next_run_time(crontab: str, time_zone: str, now: dt.datetime) -> dt.datetime:
    """The first scheduled time after `now`, in UTC.

    Cron fields are read in the plan's time zone (the CronJob controller does the same),
    so "0 9 * * *" in Asia/Shanghai is 01:00 UTC, across DST changes too.
    """
    zone = zoneinfo.ZoneInfo(time_zone) if time_zone else UTC
    local_now = now.astimezone(zone)
    return croniter(crontab, local_now).get_next(dt.datetime).astimezone(UTC)


def isoformat(moment: dt.datetime) -> str:
    """RFC 3339 in UTC with a Z, as Kubernetes writes times."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
