"""The order of the collected tests for xdist (ordering.py), simulated against xdist's own first deal."""

import pytest

from tep_runner.ordering import order, refill_chunk, scope

SHORT = [f"t.py::short_{i}" for i in range(100)]
LONG = [f"t.py::long_{i}" for i in range(3)]
SKEWED = SHORT + LONG  # the long tests collected last
DURATIONS = {i: (3.0 if "long" in i else 0.1) for i in SKEWED}


def simulate_load(ids, seconds, workers, maxschedchunk=None):
    """The makespan of xdist's LoadScheduling (3.8) on `ids`: its first chunks, then refills as it does."""
    pending = list(ids)
    count = len(ids)
    if count < 2 * workers:
        queues = [[] for _ in range(workers)]
        for k, test in enumerate(pending):
            queues[k % workers].append(test)
        pending = []
    else:
        chunk = max(min(count // workers // 4, maxschedchunk or count), 2)
        queues = [pending[k * chunk : (k + 1) * chunk] for k in range(workers)]
        pending = pending[workers * chunk :]
    clock = [0.0] * workers
    while any(queues):
        k = min((k for k in range(workers) if queues[k]), key=lambda k: clock[k])
        duration = seconds[queues[k].pop(0)]
        clock[k] += duration
        low = max(2, len(pending) // workers // 4)
        if pending and len(queues[k]) < low and not (duration >= 0.1 and len(queues[k]) >= 2):
            send = max(2, len(pending) // workers // 2) - len(queues[k])
            send = min(send, max(2 - len(queues[k]), maxschedchunk or count))
            queues[k] += pending[:send]
            del pending[:send]
    return max(clock)


def test_load_puts_the_long_tests_first_and_spreads_them_over_the_first_chunks():
    arranged = order(SKEWED, DURATIONS, "load", 2)
    assert sorted(arranged) == sorted(SKEWED)
    chunk = len(SKEWED) // 2 // 4
    first, second = arranged[:chunk], arranged[chunk : 2 * chunk]
    assert sorted([sum("long" in i for i in first), sum("long" in i for i in second)]) == [1, 2]
    bound = max(3.0, sum(DURATIONS.values()) / 2)
    assert simulate_load(arranged, DURATIONS, 2) <= bound * 1.02
    assert simulate_load(SKEWED, DURATIONS, 2) > bound * 1.1  # collection order: the long ones last


def test_plain_longest_first_would_overload_the_first_chunk():
    ranked = sorted(SKEWED, key=lambda i: -DURATIONS[i])
    assert simulate_load(ranked, DURATIONS, 2) > simulate_load(
        order(SKEWED, DURATIONS, "load", 2), DURATIONS, 2
    )


def test_worksteal_blocks_each_get_a_fair_share():
    arranged = order(SKEWED, DURATIONS, "worksteal", 2)
    half = len(arranged) // 2
    assert abs(sum(DURATIONS[i] for i in arranged[:half]) - sum(DURATIONS[i] for i in arranged[half:])) <= 3.0
    assert "long" in arranged[0] and "long" in arranged[half]
    assert sorted(arranged) == sorted(SKEWED)


def test_same_order_for_every_worker_and_the_collection_order_when_nothing_is_known():
    assert order(SKEWED, DURATIONS, "load", 2) == order(list(SKEWED), dict(DURATIONS), "load", 2)
    assert order(SKEWED, {}, "load", 2) == SKEWED  # nothing recorded yet


@pytest.mark.parametrize("dist", ["no", "load"])
def test_collection_order_without_parallel_workers(dist):
    assert order(SKEWED, DURATIONS, dist, 1 if dist == "load" else 4) == SKEWED


def test_groups_longest_first_each_in_its_own_order():
    ids = ["a.py::t1", "a.py::t2", "b.py::C::t1", "b.py::C::t2", "b.py::t3", "c.py::t1"]
    durations = {
        "a.py::t1": 1,
        "a.py::t2": 1,
        "b.py::C::t1": 0.1,
        "b.py::C::t2": 5,
        "b.py::t3": 2,
        "c.py::t1": 3,
    }
    assert order(ids, durations, "loadscope", 2) == [
        "b.py::C::t1", "b.py::C::t2", "c.py::t1", "a.py::t1", "a.py::t2", "b.py::t3",
    ]  # fmt: skip
    assert order(ids, durations, "loadfile", 2) == [
        "b.py::C::t1", "b.py::C::t2", "b.py::t3", "c.py::t1", "a.py::t1", "a.py::t2",
    ]  # fmt: skip


def test_loadgroup_keeps_a_group_together():
    ids = ["a.py::t1@db", "a.py::t2", "b.py::t1@db", "b.py::t2"]
    durations = {"a.py::t1": 1, "a.py::t2": 1.5, "b.py::t1": 1, "b.py::t2": 0.5}
    assert order(ids, durations, "loadgroup", 2) == ["a.py::t1@db", "b.py::t1@db", "a.py::t2", "b.py::t2"]


def test_scope_is_xdists():
    assert scope("a/b.py::C::t[1]", "loadscope") == "a/b.py::C"
    assert scope("a/b.py::C::t[1]", "loadfile") == "a/b.py"
    assert scope("a/b.py::t@g", "loadgroup") == "g"
    assert scope("a/b.py::t[x@y]", "loadgroup") == "a/b.py::t[x@y]"


def test_refills_are_capped_near_two_percent_of_a_workers_share():
    assert refill_chunk(83, 2) == 1
    assert refill_chunk(400, 2) == 4
    assert refill_chunk(10_000, 8) == 25
    # The skewed suite with refills of at most one test: longest first stays within 2 % of the bound.
    bound = max(3.0, sum(DURATIONS.values()) / 2)
    assert simulate_load(order(SKEWED, DURATIONS, "load", 2, 1), DURATIONS, 2, 1) <= bound * 1.02
