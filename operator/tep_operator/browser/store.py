"""The reports volume as the browser sees it, cached: a plan is re-read only when its folder changed.

A plan's signature is the modification time of its folder (a run folder or the `latest` link was added
or removed, the history replaced), of its history file, and of the run folder `latest` points to (that
run's summary.json was written). Each request stats these three per plan, nothing more, so a new run
shows on the next request and a thousand unchanged plans cost a few thousand stat calls.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tep_operator.browser import model
from tep_runner import history
from tep_runner.retention import LATEST

# A namespace, plan or run folder name, as the runner accepts them (tep_runner.settings).
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")
RUN_FILES = ("report.html", "junit.xml", "summary.json", "pytest.log")
FULL_PLANS_CACHED = 16  # plans whose every run (with per-test outcomes) stays in memory
Signature = tuple[int, int, int, int]
# The plans page re-checks every plan's signature at most this often (a new run shows within it).
REFRESH_SECONDS = 1.0


@dataclass(frozen=True)
class PlanData:
    namespace: str
    plan: str
    runs: list[model.Run]  # newest first
    in_progress: tuple[str, ...]

    def summary(self) -> model.PlanSummary:
        return model.plan_summary(self.namespace, self.plan, self.runs, self.in_progress)


@dataclass(frozen=True)
class Failure:
    test: str
    outcome: str
    message: str


@dataclass(frozen=True)
class RunFolder:
    """What a run's folder holds: its files (relative to the reports root), shards and failed tests."""

    files: list[str]
    shards: list[tuple[int, list[str], Mapping[str, Any] | None]]  # index, files, that shard's summary
    summary: Mapping[str, Any] | None
    failures: list[Failure]


class Store:
    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.realpath(root))
        self._lock = threading.Lock()
        self._summaries: dict[tuple[str, str], tuple[Signature, model.PlanSummary]] = {}
        self._full: OrderedDict[tuple[str, str], tuple[Signature, PlanData]] = OrderedDict()
        self._checked: float | None = None  # time.monotonic() of the last sweep of summaries()
        self._list: list[model.PlanSummary] = []

    def plan_names(self) -> list[tuple[str, str]]:
        """(namespace, plan) of every plan folder: real folders only (a planted link is not followed)."""
        return [(ns, plan) for ns in _folders(self.root) for plan in _folders(self.root / ns)]

    def summaries(self) -> list[model.PlanSummary]:
        """Every plan's summary; the volume is swept at most once per REFRESH_SECONDS."""
        with self._lock:
            if self._checked is not None and time.monotonic() - self._checked < REFRESH_SECONDS:
                return self._list
            found = []
            names = self.plan_names()
            for key in set(self._summaries) - set(names):
                del self._summaries[key]
            for key in names:
                signature = self._signature(*key)
                cached = self._summaries.get(key)
                if cached is None or cached[0] != signature:
                    cached = (signature, self._load(key, signature).summary())
                    self._summaries[key] = cached
                found.append(cached[1])
            self._list, self._checked = found, time.monotonic()
            return found

    def plan(self, namespace: str, plan: str) -> PlanData | None:
        if not (NAME.fullmatch(namespace) and NAME.fullmatch(plan)) or plan not in _folders(
            self.root / namespace
        ):
            return None
        with self._lock:
            return self._load((namespace, plan), self._signature(namespace, plan))

    def run_folder(self, namespace: str, plan: str, run_id: str) -> RunFolder | None:
        """The run's folder, or None when retention removed it (or it never existed)."""
        if not all(NAME.fullmatch(n) for n in (namespace, plan, run_id)) or run_id == LATEST:
            return None
        run_dir = self.root / namespace / plan / run_id
        if not (run_dir.is_dir() and not run_dir.is_symlink()) or plan not in _folders(self.root / namespace):
            return None
        shards = []
        for name in sorted(_folders(run_dir), key=lambda n: (len(n), n)):
            if name.startswith("shard-") and name[6:].isdigit():
                shard_dir = run_dir / name
                shards.append((int(name[6:]), self._files(shard_dir), _read_json(shard_dir / "summary.json")))
        junit = run_dir / "junit.xml"
        failures: list[Failure] = []
        try:
            tests = history.tests_from_junit(junit.read_text(errors="replace")) if junit.is_file() else {}
        except ET.ParseError:
            tests = {}
        for test, result in tests.items():
            if result.outcome in (*model.FAIL_LIKE, history.FLAKY):
                failures.append(Failure(test, result.outcome, result.message))
        return RunFolder(self._files(run_dir), shards, _read_json(run_dir / "summary.json"), failures)

    def _files(self, folder: Path) -> list[str]:
        present = {e.name for e in os.scandir(folder) if e.is_file(follow_symlinks=False)}
        ordered = [n for n in RUN_FILES if n in present] + sorted(present - set(RUN_FILES))
        return [str((folder / n).relative_to(self.root)) for n in ordered if not n.startswith(".")]

    def _signature(self, namespace: str, plan: str) -> Signature:
        plan_dir = (
            f"{self.root}/{namespace}/{plan}"  # strings: a thousand pathlib joins cost more than the stats
        )
        return (
            *_stat(plan_dir)[:1],
            *_stat(f"{plan_dir}/{history.FILE}"),
            *_stat(f"{plan_dir}/{LATEST}")[:1],
        )

    def _load(self, key: tuple[str, str], signature: Signature) -> PlanData:
        cached = self._full.get(key)
        if cached is not None and cached[0] == signature:
            self._full.move_to_end(key)
            return cached[1]
        plan_dir = self.root.joinpath(*key)
        records = history.read_records(plan_dir)
        known = {str(r["runId"]) for r in records}
        folders: dict[str, Mapping[str, Any] | None] = {}
        in_progress = []
        for name in _folders(plan_dir):  # `latest` is a link, not a folder
            if name in known:
                folders[name] = None
                continue
            record = _record_of_folder(plan_dir / name)
            folders[name] = record
            if record is None:
                in_progress.append(name)
        data = PlanData(key[0], key[1], model.merge_runs(records, folders), tuple(sorted(in_progress)))
        self._full[key] = (signature, data)
        self._full.move_to_end(key)
        while len(self._full) > FULL_PLANS_CACHED:
            self._full.popitem(last=False)
        return data


def _record_of_folder(run_dir: Path) -> dict[str, Any] | None:
    """A history record made from a run folder the history does not hold (a run from before it existed)."""
    summary = _read_json(run_dir / "summary.json")
    if summary is None:
        return None
    junit = run_dir / "junit.xml"
    try:
        tests = history.tests_from_junit(junit.read_text(errors="replace")) if junit.is_file() else {}
    except ET.ParseError:
        tests = {}
    return history.build_record({"runId": run_dir.name, **summary}, tests, trigger="")


def _folders(path: Path) -> list[str]:
    """Names of the real sub-folders of `path` that are valid names; [] when it is not a folder."""
    try:
        entries = list(os.scandir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(e.name for e in entries if e.is_dir(follow_symlinks=False) and NAME.fullmatch(e.name))


def _stat(path: str) -> tuple[int, int]:
    """(modification time, size) of what `path` points to; (0, 0) when absent."""
    try:
        found = os.stat(path)
    except OSError:
        return (0, 0)
    return (found.st_mtime_ns, found.st_size)


def _read_json(path: Path) -> Mapping[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
