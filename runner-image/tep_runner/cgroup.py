"""What the run may use and what it used: the CPU and memory limits, and the CPU seconds spent.

In a pod, the container's cgroup (v2 `cpu.max`, `memory.max`, `cpu.stat`; v1 `cpu.cfs_quota_us`,
`memory.limit_in_bytes`, `cpuacct.usage`) holds exactly the run's processes. Locally the cgroup holds
everything else too, so the run's CPU time is its process tree's (the children the runner waited for, with
theirs: pytest and its xdist workers), and the CPU limit is the CPUs the runner may run on.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
_NO_LIMIT = 1 << 60  # cgroup v1 writes a huge number for "no memory limit"


def parse_cpu_max(text: str) -> float | None:
    """v2 `cpu.max` ("<quota> <period>" or "max <period>") in CPUs; None when unlimited."""
    quota, _, period = text.strip().partition(" ")
    return None if quota == "max" or not period else int(quota) / int(period)


def parse_memory_max(text: str) -> int | None:
    value = text.strip()
    return None if value == "max" or int(value) >= _NO_LIMIT else int(value)


def parse_cpu_stat(text: str) -> float:
    """v2 `cpu.stat`'s usage_usec, in seconds."""
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "usage_usec":
            return int(value) / 1e6
    raise ValueError("cpu.stat has no usage_usec")


def cpu_limit(root: Path = ROOT) -> float:
    """The CPUs the run may use: the cgroup's quota, else the CPUs this process may run on."""
    cpus = float(len(os.sched_getaffinity(0)))
    try:
        quota = parse_cpu_max((root / "cpu.max").read_text())
    except FileNotFoundError:
        quota = _v1_quota(root)
    except ValueError:
        quota = None
    return min(cpus, quota) if quota else cpus


def memory_limit(root: Path = ROOT) -> int | None:
    for name in ("memory.max", "memory/memory.limit_in_bytes"):
        try:
            return parse_memory_max((root / name).read_text())
        except (FileNotFoundError, ValueError):
            continue
    return None


def cpu_seconds(in_pod: bool, root: Path = ROOT) -> float:
    """CPU seconds used so far: the cgroup's in a pod, else this process's waited-for children's."""
    if in_pod:
        try:
            return parse_cpu_stat((root / "cpu.stat").read_text())
        except (FileNotFoundError, ValueError):
            try:
                return int((root / "cpuacct" / "cpuacct.usage").read_text()) / 1e9
            except (FileNotFoundError, ValueError):
                pass
    times = os.times()
    return times.children_user + times.children_system


def peak_child_memory() -> int:
    """The largest resident set of any waited-for child so far, in bytes (Linux reports KiB): a worker's."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024


def _v1_quota(root: Path) -> float | None:
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (FileNotFoundError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None
