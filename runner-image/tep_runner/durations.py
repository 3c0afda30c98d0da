"""Each test's expected duration, from the plan's run history (history.py): the store the speed-ups read.

The history already keeps every run's per-test outcome and seconds, merged over the shards (docs/browser.md),
so there is no second store. A test's expected duration is the median of its seconds over its last
`RECENT` runs: one slow run (a loaded node) does not reorder the suite. Tests the history does not know
take the mean of the known ones (as pytest-split does), or 1 s when nothing is known.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

RECENT = 5
UNKNOWN_SECONDS = 1.0  # pytest-split's assumption when no duration is known at all


def from_history(records: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """node id -> expected seconds, from history records (oldest first)."""
    seen: dict[str, list[float]] = {}
    for record in reversed(records):  # newest first
        tests = record.get("tests")
        if not isinstance(tests, Mapping):
            continue
        for test, value in tests.items():
            recent = seen.setdefault(str(test), [])
            if len(recent) < RECENT and isinstance(value, Sequence) and len(value) == 2:
                recent.append(max(0.0, float(value[1])))
    return {test: statistics.median(values) for test, values in seen.items() if values}


def mean(durations: Mapping[str, float]) -> float:
    return statistics.fmean(durations.values()) if durations else UNKNOWN_SECONDS


def expected(nodeids: Iterable[str], durations: Mapping[str, float]) -> dict[str, float]:
    """Each id's expected seconds; unknown ids get the mean of the known durations of these ids."""
    ids = list(nodeids)
    known = {i: durations[key] for i in ids if (key := base_id(i)) in durations}
    default = mean(known)
    return {i: known.get(i, default) for i in ids}


def base_id(nodeid: str) -> str:
    """The id the history knows: without the `@group` suffix xdist's loadgroup adds to collected ids."""
    at = nodeid.rfind("@")
    return nodeid[:at] if at > nodeid.rfind("]") else nodeid


def dumps(durations: Mapping[str, float]) -> str:
    return json.dumps(dict(sorted(durations.items())))


def load(path: Path) -> dict[str, float]:
    """The durations file the runner hands the plugin (`dumps`); every xdist worker reads the same one."""
    return {str(k): float(v) for k, v in json.loads(path.read_text()).items()}
