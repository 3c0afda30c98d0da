"""The pytest command line: an argument list, never a shell string.

pytest runs in the tests folder with no target, so it finds its rootdir and configuration (pytest.toml,
pytest.ini, pyproject.toml, tox.ini, setup.cfg: its own rules, whatever its version) and applies
`testpaths` exactly as `pytest` run there by the suite's owners does. Only the plan's configFile and rootDir
name them otherwise.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

from tep_runner.settings import Settings

PLUGIN = "tep_runner.plugin"


def pytest_command(settings: Settings, out_dir: Path, tmp: Path, python: str, *, bounded: bool) -> list[str]:
    """The run (this shard's share of it when sharded); the runner's record goes to `tmp`/record.json.

    `bounded`: pytest found a configuration or rootdir above the source root (see tep_runner.plugin); run
    without one, rooted in the tests folder, as in a pod where nothing lies above the source.
    """
    s = settings
    # dist "no" runs one worker: tests one at a time in collection order, and a test that kills its process
    # is reported as failed while the run goes on (in-process, it would take every result with it).
    xdist = ["-n", "1"] if s.dist == "no" else ["-n", str(s.workers), "--dist", s.dist]
    reruns = ["--reruns", str(s.reruns)] if s.reruns else []
    config = ["-c", str(s.source_root / s.config_file)] if s.config_file else []
    rootdir = ["--rootdir", str(s.source_root / s.root_dir)] if s.root_dir else []
    if bounded:
        config = config or ["-c", os.devnull]
        rootdir = rootdir or ["--rootdir", str(s.tests_dir)]
    # Checked only when pytest discovers them: what the plan names is inside the source by validation.
    check = [] if bounded or (config and rootdir) else [
        "--tep-source-root", str(s.source_root), "--tep-outside", str(outside_file(tmp)),
    ]  # fmt: skip
    shard = ["--tep-shard", f"{s.shard_index}/{s.shards}", "--tep-split-file", str(split_file(tmp))]
    return [
        python, "-m", "pytest", *xdist, *reruns, *config, *rootdir,
        *s.pytest_args,
        # The runner's own options come last, where they win over the plan's args and the suite's addopts.
        "--junitxml", str(out_dir / "junit.xml"),
        "--html", str(out_dir / "report.html"), "--self-contained-html",
        # The tests folder may be read-only: keep pytest's cache out of it.
        "-o", f"cache_dir={tmp / 'cache'}",
        # A configMap mount holds `..data` and `..<timestamp>` folders beside the symlinked files; skip them
        # even when the suite's own norecursedirs replaces pytest's default '.*'.
        "--ignore-glob", f"{glob.escape(str(s.source_root))}/..*",
        "-p", PLUGIN, "--tep-record", str(record_file(tmp)),
        *check,
        *(shard if s.shards > 1 else []),
    ]  # fmt: skip


def record_file(tmp: Path) -> Path:
    return tmp / "record.json"


def split_file(tmp: Path) -> Path:
    return tmp / "split.json"


def outside_file(tmp: Path) -> Path:
    return tmp / "outside.txt"
