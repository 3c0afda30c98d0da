"""Two replicas, one acting: kopf's peering, used as leader election.

Every replica writes a keep-alive (priority, lastseen, lifetime) into one KopfPeering (one
per watched namespace) or ClusterKopfPeering object; kopf pauses a replica while a live peer
has a higher priority, and pauses every replica of equal priority. So each replica's
priority is fixed by its start time, the older the higher: a new replica (a rolling update,
a rescheduled pod) starts paused (peering is mandatory) and stays the standby while the
leader lives; when the leader's keep-alive expires (LIFETIME_SECONDS after its last one; a
SIGKILLed leader removes nothing), the oldest standby resumes and re-lists everything.

kopf pauses only its watch streams; the operator's own resync loop asks `leads` first.
"""

import datetime as dt
from collections.abc import Mapping
from typing import Any

# kopf's keep-alive comes every max(1, lifetime - 5..10 s): 12 s keeps a takeover within 15 s.
LIFETIME_SECONDS = 12


def start_priority(started_ns: int) -> int:
    """The priority of a replica started at `started_ns` (time.time_ns()): older is higher."""
    return -(started_ns // 1000)


def leads(peers: Mapping[str, Any], identity: str, now: dt.datetime) -> bool:
    """Whether the replica `identity` acts, given the peering object's status, as kopf
    decides it: its keep-alive is current and no other live peer has its priority or a higher one."""
    own = peers.get(identity)
    if not isinstance(own, Mapping):
        return False

    def alive(info: Mapping[str, Any]) -> bool:
        seen = dt.datetime.fromisoformat(str(info.get("lastseen")).replace("Z", "+00:00"))
        if seen.tzinfo is None:
            seen = seen.replace(tzinfo=dt.UTC)
        return seen + dt.timedelta(seconds=int(info.get("lifetime", 60))) > now

    priority = int(own.get("priority", 0))
    return alive(own) and not any(
        isinstance(info, Mapping) and alive(info) and int(info.get("priority", 0)) >= priority
        for peer, info in peers.items()
        if peer != identity
    )
