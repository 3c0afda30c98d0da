"""The pytest command line: an argument list, never a shell string.

pytest runs in the tests folder with no target, so it finds its rootdir and configuration by its own
rules, whatever its version (no ini file is named here), and applies `testpaths` exactly as `pytest` run
there by the suite's owners does. Only the plan's configFile and rootDir name them otherwise.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

from tep_runner.ordering import DURATION, GROUPED
from tep_runner.settings import Settings

PLUGIN = "tep_runner.plugin"


def pytest_command(
    settings: Settings, out_dir: Path, tmp: Path, python: str, *, bounded: bool, durations: bool = False
) -> list[str]:
    """The run (this shard's share of it when sharded); the run's record goes to `record_file(tmp)`, and
    the runner writes why it stops pytest, when it does, to `stop_file(tmp)` (stopping.py).

    `durations`: the runner wrote the plan's recorded durations to `durations_file(tmp)`; the plugin splits
    the shards and (with order: duration) orders the tests by them (balance.py, ordering.py).

    `bounded`: pytest found a configuration or rootdir above the source root (see tep_runner.plugin); run
    without one, rooted in the tests folder, as in a pod where nothing lies above the source.
    """
    s = settings
    # dist "no" runs one worker: tests one at a time in collection order, and a test that kills its process
    # is reported as failed while the run goes on (in-process, it would take every result with it).
    # Without the plan's dist, none: a --dist in the suite's addopts (loadgroup for its xdist_group marks,
    # loadscope for its class fixtures) stays in force, as in bare pytest.
    dist = [f"--dist={s.dist}"] if s.dist else []
    xdist = ["--numprocesses=1"] if s.dist == "no" else [f"--numprocesses={s.workers}", *dist]
    reruns = [f"--reruns={s.reruns}"] if s.reruns else []
    # pytest-timeout's per-test limit: the plan's choice, so on the command line, over the suite's ini.
    timeout = [f"--timeout={s.timeout_seconds}"] if s.timeout_seconds else []
    config = [f"--config-file={s.source_root / s.config_file}"] if s.config_file else []
    rootdir = [f"--rootdir={s.source_root / s.root_dir}"] if s.root_dir else []
    if bounded:
        config = config or [f"--config-file={os.devnull}"]
        rootdir = rootdir or [f"--rootdir={s.tests_dir}"]
    # Checked only when pytest discovers them: what the plan names is inside the source by validation.
    check = [] if bounded or (config and rootdir) else [
        f"--tep-source-root={s.source_root}", f"--tep-outside={outside_file(tmp)}",
    ]  # fmt: skip
    shard = [f"--tep-shard={s.shard_index}/{s.shards}", f"--tep-split-file={split_file(tmp)}"]
    # xdist sorts loadscope's groups by their number of tests unless told not to; ordering.py sorts them.
    # Before the plan's args, which may say otherwise.
    schedule = dict.fromkeys(GROUPED, ("--no-loadscope-reorder",))
    arrange = [f"--tep-durations={durations_file(tmp)}", f"--tep-order={s.order}"]
    ordered = durations and s.order == DURATION
    # Every option as one `--name=value` word: pytest looks for its rootdir among the words that are not
    # options before it knows the plugins' options, so a separate value (a folder) would be taken for one.
    return [
        # -P: `python -m` would put the working directory first on sys.path (and xdist hands the controller's
        # sys.path to its workers), making the source's top-level modules importable where bare `pytest`, a
        # console script, cannot import them.
        python, "-P", "-m", "pytest", *xdist, *reruns, *timeout, *config, *rootdir,
        *(schedule.get(s.dist, []) if ordered else []),
        *s.pytest_args,
        # The runner's own options come last, where they win over the plan's args and the suite's addopts.
        # xunit1 records each test's file, from which the run history (history.py) rebuilds the node ids.
        f"--junitxml={out_dir / 'junit.xml'}", "--override-ini=junit_family=xunit1",
        f"--html={out_dir / 'report.html'}", "--self-contained-html",
        # The tests folder may be read-only: keep pytest's cache out of it.
        f"--override-ini=cache_dir={tmp / 'cache'}",
        # A configMap mount holds `..data` and `..<timestamp>` folders beside the symlinked files; skip them
        # even when the suite's own norecursedirs replaces pytest's default '.*'.
        f"--ignore-glob={glob.escape(str(s.source_root))}/..*",
        "-p", PLUGIN, f"--tep-record={record_file(tmp)}", f"--tep-stop-file={stop_file(tmp)}",
        f"--tep-rewrite-cache={rewrite_folder(tmp)}",
        *check,
        *(shard if s.shards > 1 else []),
        *(arrange if durations else []),
    ]  # fmt: skip


def record_file(tmp: Path) -> Path:
    return tmp / "record.jsonl"


def rewrite_folder(tmp: Path) -> Path:
    return tmp / "rewritten"


def stop_file(tmp: Path) -> Path:
    return tmp / "stop-cause.txt"


def split_file(tmp: Path) -> Path:
    return tmp / "split.json"


def durations_file(tmp: Path) -> Path:
    return tmp / "durations.json"


def outside_file(tmp: Path) -> Path:
    return tmp / "outside.txt"
