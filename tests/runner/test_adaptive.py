"""The adaptive worker count (adaptive.py) and the measures it is fed (cgroup.py)."""

import pytest

from tep_runner import cgroup
from tep_runner.adaptive import decide


def run(workers, utilization, seconds, peak=0):
    return {
        "workers": workers,
        "cpuUtilization": utilization,
        "durationSeconds": seconds,
        "peakMemoryPerWorker": peak,
    }


def test_starts_at_the_cpu_limit():
    decision = decide([], 2.0, None, None)
    assert decision.workers == 2
    assert "no measured run yet" in decision.reason
    assert decide([{"workers": 3, "durationSeconds": 4.0}], 2.5, None, None).workers == 2  # never measured


def test_io_bound_suite_climbs_while_the_wall_time_falls_up_to_four_per_cpu():
    history = [run(2, 0.1, 20.0)]
    assert decide(history, 2, None, None).workers == 4
    history.append(run(4, 0.15, 10.5))
    assert decide(history, 2, None, None).workers == 8
    history.append(run(8, 0.3, 5.5))
    decision = decide(history, 2, None, None)
    assert decision.workers == 8  # the default maxWorkers: 4 x the CPU limit
    assert "at the limit" in decision.reason and "I/O-bound" in decision.reason


def test_io_bound_but_more_workers_did_not_help_stays():
    history = [run(2, 0.2, 10.0), run(4, 0.3, 9.8)]
    decision = decide(history, 2, None, None)
    assert decision.workers == 4 and "not faster than 2" in decision.reason


def test_goes_back_to_the_fastest_count_when_a_step_made_it_slower():
    decision = decide([run(2, 0.3, 10.0), run(4, 0.4, 6.0), run(8, 0.45, 9.0)], 2, None, None)
    assert decision.workers == 4 and "were faster" in decision.reason


def test_cpu_bound_suite_is_lowered_to_the_cpu_limit():
    assert decide([run(8, 0.95, 10.0)], 2, None, None).workers == 4
    assert decide([run(8, 0.95, 10.0), run(4, 0.97, 10.0)], 2, None, None).workers == 2
    decision = decide([run(2, 0.99, 10.0)], 2, None, None)
    assert decision.workers == 2 and "CPU-bound" in decision.reason


def test_cpu_bound_but_fewer_workers_were_slower_keeps():
    assert decide([run(2, 0.45, 10.0), run(4, 0.85, 7.0)], 2, None, None).workers == 4


def test_max_workers_and_memory_cap():
    assert decide([run(4, 0.1, 10.0)], 2, 5, None).workers == 5
    # 1 GiB limit, 300 MiB per worker at the last run: at most 3.
    decision = decide([run(2, 0.1, 10.0, peak=300 << 20)], 2, None, 1 << 30)
    assert decision.workers == 3 and "memory limit" in decision.reason


def test_between_io_and_cpu_bound_keeps():
    assert decide([run(3, 0.65, 10.0)], 2, None, None).workers == 3


@pytest.mark.parametrize(
    ("text", "cpus"), [("max 100000\n", None), ("200000 100000\n", 2.0), ("50000 100000", 0.5)]
)
def test_cpu_max(text, cpus):
    assert cgroup.parse_cpu_max(text) == cpus


def test_cgroup_files(tmp_path):
    (tmp_path / "cpu.max").write_text("50000 100000\n")
    (tmp_path / "memory.max").write_text("536870912\n")
    (tmp_path / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n")
    assert cgroup.cpu_limit(tmp_path) == 0.5
    assert cgroup.memory_limit(tmp_path) == 512 << 20
    assert cgroup.cpu_seconds(True, tmp_path) == 2.5
    (tmp_path / "memory.max").write_text("max\n")
    assert cgroup.memory_limit(tmp_path) is None


def test_local_cpu_seconds_are_the_waited_for_children(tmp_path):
    import subprocess
    import sys

    before = cgroup.cpu_seconds(False, tmp_path)
    subprocess.run([sys.executable, "-c", "sum(i * i for i in range(3_000_000))"], check=True)
    assert cgroup.cpu_seconds(False, tmp_path) - before > 0.05
    assert cgroup.peak_child_memory() > 1 << 20
