"""Which replica acts: the same rule as kopf's peering (tep_operator.peering)."""

import datetime as dt

from tep_operator.peering import LIFETIME_SECONDS, leads, start_priority

NOW = dt.datetime(2026, 12, 1, 12, 0, 0, tzinfo=dt.UTC)


def peer(priority: int, seconds_ago: float, lifetime: int = LIFETIME_SECONDS) -> dict[str, object]:
    seen = (NOW - dt.timedelta(seconds=seconds_ago)).isoformat()
    return {"priority": priority, "lastseen": seen, "lifetime": lifetime}


def test_the_older_replica_has_the_higher_priority() -> None:
    assert start_priority(1_000_000_000) > start_priority(2_000_000_000)


def test_the_highest_live_priority_leads_and_only_it() -> None:
    peers = {"a": peer(start_priority(1_000_000_000), 1), "b": peer(start_priority(2_000_000_000), 1)}
    assert leads(peers, "a", NOW)
    assert not leads(peers, "b", NOW)


def test_the_standby_leads_once_the_leaders_keepalive_expired() -> None:
    peers = {"a": peer(10, LIFETIME_SECONDS + 1), "b": peer(5, 1)}
    assert leads(peers, "b", NOW)
    assert not leads(peers, "a", NOW)  # dead itself


def test_equal_priorities_pause_both_and_an_absent_replica_does_not_lead() -> None:
    peers = {"a": peer(7, 1), "b": peer(7, 1)}
    assert not leads(peers, "a", NOW) and not leads(peers, "b", NOW)
    assert not leads(peers, "c", NOW)
