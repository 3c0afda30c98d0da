"""`spec.pytest.workers: adaptive`: the worker count chosen from the CPU use measured in earlier runs.

A suite that waits (on a network, a database, sleeps) leaves the CPU idle at one worker per core and
finishes sooner with more; one that computes does not. Each run records `workers`, `cpuUtilization` (CPU
seconds used over wall seconds x the CPU limit; cgroup.py measures it) and its peak memory per worker in
the plan's history. From those:

- no measured run yet: start at the CPU limit;
- I/O-bound (utilisation below IO_BOUND): double the workers, unless that count was tried and did not cut
  the wall time by STEP_GAIN;
- CPU-bound (at or above CPU_BOUND): halve them (not below the CPU limit), unless fewer were tried and slower;
- else, or when the last step made the run slower than the best count tried: keep, or go back to the best;

always within `maxWorkers` (default 4 x the CPU limit) and the memory limit over the last run's peak memory
per worker. The reason is said in the run's log.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

ADAPTIVE: Final = "adaptive"
IO_BOUND = 0.5
CPU_BOUND = 0.8
STEP_GAIN = 0.9  # a step must bring the wall time under 90 % of the other count's to count as faster
MAX_WORKERS_PER_CPU = 4
RECENT = 10  # measured runs considered
# History and summary keys (history.py records them from summary.json).
WORKERS, UTILIZATION, PEAK_MEMORY = "workers", "cpuUtilization", "peakMemoryPerWorker"


@dataclass(frozen=True)
class Decision:
    workers: int
    reason: str


def default_max(cpu_limit: float) -> int:
    return MAX_WORKERS_PER_CPU * start(cpu_limit)


def start(cpu_limit: float) -> int:
    return max(1, math.floor(cpu_limit))


def decide(
    records: Sequence[Mapping[str, Any]],
    cpu_limit: float,
    max_workers: int | None,
    memory_limit: int | None,
) -> Decision:
    """The worker count for the next run, from history records (oldest first)."""
    first = start(cpu_limit)
    measured = [r for r in records if _measured(r)][-RECENT:]
    cap, cap_reason = max_workers or default_max(cpu_limit), "maxWorkers"
    peak = int(measured[-1].get(PEAK_MEMORY) or 0) if measured else 0
    if memory_limit and peak and memory_limit // peak < cap:
        cap, cap_reason = max(1, memory_limit // peak), f"memory limit {memory_limit} B / {peak} B per worker"
    limits = f"CPU limit {cpu_limit:g}, at most {cap} ({cap_reason})"
    if not measured:
        return Decision(min(first, cap), f"no measured run yet: the CPU limit ({limits})")
    last = measured[-1]
    workers, used = _per_pod(last), float(last[UTILIZATION])
    tried = {_per_pod(r): float(r["durationSeconds"]) for r in measured}  # the latest time per count
    seen = f"last run: {workers} workers, {used:.0%} of the CPU, {tried[workers]:.1f} s"
    best = min(tried, key=lambda w: (tried[w], w))
    if tried[best] < tried[workers] * STEP_GAIN and best != workers:
        return _within(best, cap, first, f"{seen}; {best} workers were faster ({tried[best]:.1f} s)", limits)
    if used < IO_BOUND:
        more = min(cap, workers * 2)
        if more <= workers:
            return _within(workers, cap, first, f"{seen}: I/O-bound, at the limit", limits)
        if more in tried and tried[more] >= tried[workers] * STEP_GAIN:
            return _within(workers, cap, first, f"{seen}: I/O-bound, but {more} were not faster", limits)
        below = max((w for w in tried if w < workers), default=0)
        if below and tried[workers] >= tried[below] * STEP_GAIN:
            return _within(workers, cap, first, f"{seen}: I/O-bound, but not faster than {below}", limits)
        return _within(more, cap, first, f"{seen}: I/O-bound, raised", limits)
    if used >= CPU_BOUND:
        fewer = max(first, workers // 2)
        if fewer >= workers:
            return _within(workers, cap, first, f"{seen}: CPU-bound, at the CPU limit", limits)
        if fewer in tried and tried[fewer] * STEP_GAIN > tried[workers]:
            return _within(workers, cap, first, f"{seen}: CPU-bound, but {fewer} were slower", limits)
        return _within(fewer, cap, first, f"{seen}: CPU-bound, lowered", limits)
    return _within(workers, cap, first, f"{seen}: neither I/O- nor CPU-bound, kept", limits)


def _within(workers: int, cap: int, first: int, reason: str, limits: str) -> Decision:
    chosen = max(1, min(workers, cap))
    return Decision(chosen, f"{chosen} workers ({reason}; {limits}; started at {first})")


def _per_pod(record: Mapping[str, Any]) -> int:
    """Workers of one pod: a sharded run's record holds the sum over its shards."""
    return max(1, int(record[WORKERS]) // max(1, int(record.get("shards") or 1)))


def _measured(record: Mapping[str, Any]) -> bool:
    try:
        return (
            int(record.get(WORKERS) or 0) > 0
            and float(record[UTILIZATION]) >= 0
            and float(record["durationSeconds"]) > 0
        )
    except (KeyError, TypeError, ValueError):
        return False
