"""The pytest command lines: argument lists, never a shell string."""

from __future__ import annotations

import glob
from pathlib import Path

from tep_runner.settings import Settings

PLUGIN = "tep_runner.plugin"


# The ini files pytest reads, in its own order. One in the tests folder is the suite's own.
INI_FILES = ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")


def pytest_command(
    settings: Settings,
    out_dir: Path,
    cache_dir: Path,
    python: str,
    ids_file: Path | None,
    ini: str,
    *,
    progress_file: Path | None = None,
    stop_file: Path | None = None,
) -> list[str]:
    """The run: the whole tests folder, or this shard's node ids read by pytest from `@ids_file`.

    `progress_file`, `stop_file`: the plugin's record of the run, and the cause of a stop (stopping.py).
    """
    target = f"@{ids_file}" if ids_file else str(settings.tests_dir)
    # dist "no" keeps xdist loaded with -n 0, so suites using its `worker_id` fixture still work.
    xdist = ["-n", "0"] if settings.dist == "no" else ["-n", str(settings.workers), "--dist", settings.dist]
    reruns = ["--reruns", str(settings.reruns)] if settings.reruns else []
    timeout = ["--timeout", str(settings.timeout_seconds)] if settings.timeout_seconds else []
    progress = ["--tep-progress-file", str(progress_file)] if progress_file else []
    stop = ["--tep-stop-file", str(stop_file)] if stop_file else []
    return [
        python, "-m", "pytest", target, *xdist, *reruns, *timeout, *progress, *stop,
        # xunit1 records each test's file, from which summary.py rebuilds the node ids.
        "--junitxml", str(out_dir / "junit.xml"), "-o", "junit_family=xunit1",
        "--html", str(out_dir / "report.html"), "--self-contained-html",
        *_common(settings, cache_dir, ini),
        *settings.pytest_args,
    ]  # fmt: skip


def collect_command(
    settings: Settings, cache_dir: Path, python: str, nodeids_file: Path, ini: str
) -> list[str]:
    """Collection only (for shards), with the plan's own selection (-k, -m ...) applied."""
    return [
        python, "-m", "pytest", str(settings.tests_dir), "--collect-only", "-q",
        *_common(settings, cache_dir, ini), "--tep-nodeids-file", str(nodeids_file),
        *settings.pytest_args,
        "-n", "0",  # last, so a -n among the plan's args cannot start workers just to collect
    ]  # fmt: skip


def _common(settings: Settings, cache_dir: Path, ini: str) -> list[str]:
    return [
        # The suite's own ini file, or none (os.devnull): never one of a folder above the tests,
        # which on a laptop may be an unrelated project's.
        "-c", ini,
        # Node ids relative to the tests folder, whatever ini file lies above it.
        "--rootdir", str(settings.tests_dir),
        # The tests folder may be read-only: keep pytest's cache out of it.
        "-o", f"cache_dir={cache_dir}",
        # A configMap mount holds `..data` and `..<timestamp>` folders beside the symlinked files; skip them
        # even when the suite's own norecursedirs replaces pytest's default '.*'.
        "--ignore-glob", f"{glob.escape(str(settings.tests_dir))}/..*",
        "-p", PLUGIN,
    ]  # fmt: skip
