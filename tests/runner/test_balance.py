"""The shard split by duration (balance.py): LPT, as pytest-split's least_duration."""

import random

import pytest

from tep_runner.balance import imbalance, lpt, predicted, share
from tep_runner.durations import expected, from_history

IDS = [f"test_{f}.py::test_{i}" for f in "cab" for i in range(7)]


def seeded(seed, count=60):
    rng = random.Random(seed)
    ids = [f"test_{i % 7}.py::test_{i}" for i in range(count)]
    return ids, {i: rng.choice([0.0, 0.01, 0.1, 0.5, 3.0, rng.uniform(0, 20)]) for i in ids}


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("shards", [2, 3, 4, 7])
def test_complete_disjoint_and_balanced_within_the_longest_test(seed, shards):
    ids, durations = seeded(seed)
    parts = lpt(ids, durations, shards)
    assert sorted(i for part in parts for i in part) == sorted(ids)
    totals = [sum(durations[i] for i in part) for part in parts]
    assert max(totals) - min(totals) <= max(durations.values()) + 1e-9
    assert all(parts), "a shard without tests"


def test_no_empty_shard_when_most_tests_take_no_time():
    ids = [f"t.py::test_{i}" for i in range(5)]
    parts = lpt(ids, {ids[0]: 5.0} | {i: 0.0 for i in ids[1:]}, 4)
    assert all(parts)
    assert [ids[0]] in parts


def test_deterministic_whatever_the_collection_order_and_in_collection_order():
    ids, durations = seeded(3)
    shuffled = ids[:]
    random.Random(1).shuffle(shuffled)
    a, b = lpt(ids, durations, 4), lpt(shuffled, durations, 4)
    assert [set(p) for p in a] == [set(p) for p in b]
    assert all(p == [i for i in ids if i in set(p)] for p in a)  # each shard keeps the collection order
    assert [share(ids, durations, 4, k) for k in range(4)] == a


def test_unknown_tests_take_the_mean_of_the_known():
    durations = {"a.py::t1": 10.0, "a.py::t2": 2.0}
    assert expected(["a.py::t1", "a.py::t2", "a.py::new"], durations)["a.py::new"] == 6.0
    assert expected(["x.py::t"], {})["x.py::t"] == 1.0  # nothing known: as pytest-split
    # Three tests of 10 s known, three unknown (10 s each, the mean): two shards take three tests each.
    ids = [f"a.py::t{i}" for i in range(6)]
    parts = lpt(ids, {i: 10.0 for i in ids[:3]}, 2)
    assert sorted(len(p) for p in parts) == [3, 3]


def test_longest_first_beats_round_robin_on_a_skewed_suite():
    ids = [f"t.py::test_{i:02d}" for i in range(44)]
    durations = {i: (3.0 if k % 4 == 0 and k < 16 else 0.1) for k, i in enumerate(ids)}
    assert imbalance(predicted(ids, durations, 4)) <= 1.05
    round_robin = [sorted(ids)[k::4] for k in range(4)]
    assert imbalance([sum(durations[i] for i in p) for p in round_robin]) > 1.3


def test_imbalance():
    assert imbalance([10.0, 10.0]) == 1.0
    assert imbalance([12.0, 6.0, 6.0]) == 1.5
    assert imbalance([0.0, 0.0]) == 1.0


def test_loadgroup_suffix_finds_the_recorded_duration():
    assert expected(["a.py::t@db"], {"a.py::t": 4.0}) == {"a.py::t@db": 4.0}
    assert expected(["a.py::t[x@y]"], {"a.py::t[x@y]": 4.0}) == {"a.py::t[x@y]": 4.0}


def test_durations_from_history_are_the_median_of_recent_runs():
    records = [
        {"tests": {"a::t": ["passed", s], "a::u": ["failed", 1.0]}} for s in (100.0, 1.0, 2.0, 3.0, 50.0, 2.5)
    ]
    # The newest five runs of a::t: 1, 2, 3, 50, 2.5 -> median 2.5; the oldest (100 s) is forgotten.
    assert from_history(records) == {"a::t": 2.5, "a::u": 1.0}
    assert from_history([]) == {}
