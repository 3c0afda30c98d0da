"""The collected tests ordered so that xdist starts the long ones first (`spec.pytest.order: duration`).

xdist never orders by duration; it hands tests to workers in collection order, so a suite whose slow tests
are collected last ends with one worker running them while the others idle. Longest first (unknown tests
at the mean, durations.py) is list scheduling's LPT rule, within one pod.

Every xdist worker collects and must collect the same list in the same order (the controller aborts
otherwise), so the order is a pure function of the collected ids and the durations file the runner hands
all of them. How each scheduler of pytest-xdist 3.8 first deals the list out decides the arrangement:

- `load`: each worker first gets a chunk of consecutive tests (LoadScheduling.schedule), the rest goes to
  whichever worker runs low. The head that fills those first chunks is dealt so each chunk holds an LPT
  share of it (longest first): otherwise the first worker's chunk would hold every long test. Later, xdist
  refills a worker with up to a quarter of what is left at once, which strands short tests behind the
  long ones on one worker: unless the plan sets `--maxschedchunk`, the plugin caps a refill at
  `refill_chunk` tests (REFILL_SHARE of a worker's share: the loss of balance stays near 2 %, and a suite
  of many tiny tests keeps sending them in batches).
- `worksteal`: each worker first gets a contiguous block (WorkStealingScheduling.check_schedule); the blocks
  are dealt the same way, idle workers then steal the tail (the short tests) of the others.
- `loadscope`, `loadfile`, `loadgroup`: whole groups (xdist's `_split_scope`) go to workers in the order of
  their first test, longest group first; a group keeps its own order (its fixtures rely on it). The runner
  passes `--no-loadscope-reorder`, which would otherwise sort the groups by their number of tests.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence

from tep_runner.durations import base_id, expected

DURATION, COLLECTION = "duration", "collection"
ORDERS = (DURATION, COLLECTION)
GROUPED = ("loadscope", "loadfile", "loadgroup")
ORDERED = ("load", "worksteal", *GROUPED)  # the dists whose schedule follows the collection order
REFILL_SHARE = 0.02


def refill_chunk(tests: int, workers: int) -> int:
    """The most tests xdist's load scheduler should send a worker at once (its --maxschedchunk)."""
    return max(1, int(REFILL_SHARE * tests / max(workers, 1)))


def order(
    nodeids: Sequence[str],
    durations: Mapping[str, float],
    dist: str,
    workers: int,
    maxschedchunk: int | None = None,
) -> list[str]:
    """The ids arranged for `dist` over `workers` workers; the collection order when ordering cannot help
    (one worker, a dist that ignores the order) or nothing is known yet."""
    ids = list(nodeids)
    if dist not in ORDERED or workers < 2 or len(ids) < 2 or not any(base_id(i) in durations for i in ids):
        return ids
    seconds = expected(ids, durations)
    if dist in GROUPED:
        return _groups(ids, seconds, dist)
    ranked = sorted(ids, key=lambda i: -seconds[i])  # stable: ties keep the collection order
    sizes = _first_chunks(len(ids), workers, maxschedchunk) if dist == "load" else _blocks(len(ids), workers)
    return _deal(ranked, seconds, sizes)


def scope(nodeid: str, dist: str) -> str:
    """xdist's work unit of a test (the `_split_scope` of its LoadScope, LoadFile, LoadGroup schedulers)."""
    if dist == "loadfile":
        return nodeid.split("::", 1)[0]
    if dist == "loadgroup":
        return nodeid.split("@")[-1] if nodeid.rfind("@") > nodeid.rfind("]") else nodeid
    return nodeid.rsplit("::", 1)[0]


def _groups(ids: list[str], seconds: Mapping[str, float], dist: str) -> list[str]:
    groups: dict[str, list[str]] = {}
    for nodeid in ids:
        groups.setdefault(scope(nodeid, dist), []).append(nodeid)
    total = {name: sum(seconds[i] for i in members) for name, members in groups.items()}
    ranked = sorted(groups, key=lambda name: -total[name])  # stable: ties keep the first-test order
    return [nodeid for name in ranked for nodeid in groups[name]]


def _first_chunks(count: int, workers: int, maxschedchunk: int | None) -> list[int]:
    """How many consecutive tests LoadScheduling.schedule first sends each worker."""
    if count < 2 * workers:
        return [1] * count  # one each, round-robin
    chunk = max(min(count // workers // 4, maxschedchunk or count), 2)
    return [chunk] * workers


def _blocks(count: int, workers: int) -> list[int]:
    """The block each worker first gets from WorkStealingScheduling (the pending split evenly, in order)."""
    sizes, left = [], count
    for remaining in range(workers, 0, -1):
        sizes.append(left // remaining)
        left -= sizes[-1]
    return sizes


def _deal(ranked: list[str], seconds: Mapping[str, float], sizes: list[int]) -> list[str]:
    """The head of `ranked` (longest first) dealt LPT-wise into consecutive bins of `sizes`, then the rest."""
    head, rest = ranked[: sum(sizes)], ranked[sum(sizes) :]
    bins: list[list[str]] = [[] for _ in sizes]
    heap = [(0.0, b) for b, size in enumerate(sizes) if size]
    heapq.heapify(heap)
    for nodeid in head:
        total, b = heapq.heappop(heap)
        bins[b].append(nodeid)
        if len(bins[b]) < sizes[b]:
            heapq.heappush(heap, (total + seconds[nodeid], b))
    return [nodeid for b in bins for nodeid in b] + rest
