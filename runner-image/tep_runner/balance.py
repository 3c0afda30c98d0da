"""Shards balanced by duration: longest-processing-time-first over the expected durations.

pytest-split's `least_duration` is the reference: the tests, longest first (ties by node id, so every pod
computes the same split from the same history), each to the shard with the least time so far. Two
differences: ties between shards go to the one with fewer tests, so every shard gets a test when there are
at least as many tests as shards (zero-second tests would otherwise pile onto one shard); and each shard
keeps the tests in their collection order (as pytest-split does), for ordering.py to arrange.

LPT guarantees that the slowest shard exceeds the fastest by at most the longest test.
"""

from __future__ import annotations

import heapq
import statistics
from collections.abc import Mapping, Sequence

from tep_runner.durations import expected


def lpt(nodeids: Sequence[str], durations: Mapping[str, float], shards: int) -> list[list[str]]:
    """The ids split into `shards` lists, each in collection order; duplicates are kept once."""
    ids = list(dict.fromkeys(nodeids))
    seconds = expected(ids, durations)
    position = {nodeid: i for i, nodeid in enumerate(ids)}
    heap = [(0.0, 0, shard) for shard in range(shards)]  # (seconds so far, tests so far, shard)
    shares: list[list[str]] = [[] for _ in range(shards)]
    for nodeid in sorted(ids, key=lambda i: (-seconds[i], i)):
        total, count, shard = heapq.heappop(heap)
        shares[shard].append(nodeid)
        heapq.heappush(heap, (total + seconds[nodeid], count + 1, shard))
    return [sorted(share, key=position.__getitem__) for share in shares]


def share(nodeids: Sequence[str], durations: Mapping[str, float], shards: int, index: int) -> list[str]:
    """Shard `index`'s tests."""
    return lpt(nodeids, durations, shards)[index]


def imbalance(shard_seconds: Sequence[float]) -> float:
    """The slowest shard over the mean shard (1.0: perfectly even); 1.0 for no time at all."""
    average = statistics.fmean(shard_seconds) if shard_seconds else 0.0
    return round(max(shard_seconds) / average, 3) if average > 0 else 1.0


def predicted(nodeids: Sequence[str], durations: Mapping[str, float], shards: int) -> list[float]:
    """Each shard's expected seconds under `lpt`."""
    seconds = expected(nodeids, durations)
    return [sum(seconds[i] for i in s) for s in lpt(nodeids, durations, shards)]
