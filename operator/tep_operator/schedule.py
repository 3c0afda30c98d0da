"""When a plan runs next, computed with croniter in the plan's own time zone."""

import datetime as dt
import functools
import zoneinfo

from croniter import croniter

UTC = dt.UTC


def next_run_time(crontab: str, time_zone: str, now: dt.datetime) -> dt.datetime:
    """The first scheduled time after `now`, in UTC.

    Cron fields are read in the plan's time zone (the CronJob controller does the same),
    so "0 9 * * *" in Asia/Shanghai is 01:00 UTC, across DST changes too.
    """
    # croniter steps in whole minutes: every `now` of one minute has the same answer, so one
    # computation serves every plan of that crontab and zone in that minute
    return _next_run_time(crontab, time_zone, now.astimezone(UTC).replace(second=0, microsecond=0))


@functools.lru_cache(maxsize=4096)
def _next_run_time(crontab: str, time_zone: str, now: dt.datetime) -> dt.datetime:
    zone = zoneinfo.ZoneInfo(time_zone) if time_zone else UTC
    local_now = now.astimezone(zone)
    return croniter(crontab, local_now).get_next(dt.datetime).astimezone(UTC)


def isoformat(moment: dt.datetime) -> str:
    """RFC 3339 in UTC with a Z, as Kubernetes writes times."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
