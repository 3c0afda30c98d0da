"""The runner's settings: the TEP_* environment (docs/architecture.md) parsed into a frozen dataclass."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tep_runner.adaptive import ADAPTIVE
from tep_runner.ordering import DURATION, ORDERS
from tep_runner.runid import job_minutes

DISTS = ("load", "loadscope", "loadfile", "loadgroup", "worksteal", "no")
# Options the runner sets itself; a plan overriding them would silently break the summary or the report.
RESERVED_ARGS = ("--junitxml", "--junit-xml", "--html")
# Options with a setting of their own (spec.pytest.configFile, spec.pytest.rootDir).
OWN_SETTING_ARGS = {
    "-c": "TEP_PYTEST_CONFIG_FILE",
    "--config-file": "TEP_PYTEST_CONFIG_FILE",
    "--rootdir": "TEP_PYTEST_ROOT_DIR",
}
# Plugins the runner's artifacts come from; `-p no:<name>` would silently drop one.
REQUIRED_PLUGINS = ("html", "junitxml", "xdist", "terminal", "tep_runner.plugin")
# One path component: namespace, plan and run id become folder names on the shared volume.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")


class SettingsError(ValueError):
    """A TEP_* variable is missing or malformed; the message names it."""


@dataclass(frozen=True)
class Settings:
    namespace: str
    plan: str
    source_root: Path  # the suite's source: configMap mount, git checkout, image path
    tests_dir: Path  # where pytest runs (its working directory): the source root, or a folder inside it
    config_file: str  # "" or a path relative to source_root (pytest -c)
    root_dir: str  # "" or a path relative to source_root (pytest --rootdir)
    reports_dir: Path
    job_name: str  # "" when unset (local runs)
    run_id: str  # "" when unset: derived from job_name, see runid.py
    workers: int | Literal["auto", "adaptive"]
    dist: str  # "": the suite's own --dist (its addopts), else xdist's load
    reruns: int
    pytest_args: tuple[str, ...]
    keep_last: int
    max_age_days: int
    shards: int
    shard_index: int
    termination_log: Path | None  # None: no termination message (local runs)
    deadline_seconds: int | None = None  # the plan's activeDeadlineSeconds: the runner stops pytest then
    timeout_seconds: int | None = None  # the plan's pytest.timeoutSeconds: pytest-timeout's --timeout
    order: str = DURATION  # the plan's pytest.order: duration | collection (ordering.py)
    max_workers: int | None = None  # the plan's pytest.maxWorkers, with workers: adaptive (adaptive.py)


def settings_from_env(environ: Mapping[str, str]) -> Settings:
    """Parse and check the TEP_* variables; raise SettingsError naming the first bad one."""
    shards = _int(environ, "TEP_SHARDS", 1, minimum=1)
    job_name = environ.get("TEP_JOB_NAME", "")
    run_id = _name(environ, "TEP_RUN_ID", required=False)
    if run_id == "latest":
        raise SettingsError("TEP_RUN_ID: 'latest' is reserved for the link to the newest run")
    if shards > 1 and not run_id and job_minutes(job_name) is None:
        # Every shard must write into the same run folder, so the id may not depend on the pod's clock.
        raise SettingsError(
            "TEP_SHARDS: more than one shard needs TEP_RUN_ID or a TEP_JOB_NAME ending in -<minutes>"
        )
    return Settings(
        namespace=_name(environ, "TEP_NAMESPACE"),
        plan=_name(environ, "TEP_PLAN"),
        source_root=_path(environ, "TEP_SOURCE_ROOT" if environ.get("TEP_SOURCE_ROOT") else "TEP_TESTS_DIR"),
        tests_dir=_path(environ, "TEP_TESTS_DIR"),
        config_file=_relative(environ, "TEP_PYTEST_CONFIG_FILE"),
        root_dir=_relative(environ, "TEP_PYTEST_ROOT_DIR"),
        reports_dir=_path(environ, "TEP_REPORTS_DIR"),
        job_name=job_name,
        run_id=run_id,
        workers=_workers(environ),
        dist=_choice(environ, "TEP_DIST", "load", DISTS) if environ.get("TEP_DIST") else "",
        reruns=_int(environ, "TEP_RERUNS", 0, minimum=0),
        pytest_args=_pytest_args(environ),
        keep_last=_int(environ, "TEP_KEEP_LAST", 20, minimum=1),
        max_age_days=_int(environ, "TEP_MAX_AGE_DAYS", 7, minimum=1),
        shards=shards,
        shard_index=_shard_index(environ, shards),
        termination_log=Path(environ["TEP_TERMINATION_LOG"]) if environ.get("TEP_TERMINATION_LOG") else None,
        deadline_seconds=_optional_int(environ, "TEP_ACTIVE_DEADLINE_SECONDS"),
        timeout_seconds=_optional_int(environ, "TEP_TIMEOUT_SECONDS"),
        order=_choice(environ, "TEP_ORDER", DURATION, ORDERS),
        max_workers=_optional_int(environ, "TEP_MAX_WORKERS"),
    )


def _required(environ: Mapping[str, str], var: str) -> str:
    value = environ.get(var, "")
    if not value:
        raise SettingsError(f"{var}: missing (docs/architecture.md lists the TEP_* settings)")
    return value


def _name(environ: Mapping[str, str], var: str, *, required: bool = True) -> str:
    value = _required(environ, var) if required else environ.get(var, "")
    if value and not _NAME.fullmatch(value):
        raise SettingsError(f"{var}: {value!r} is not a valid name (letters, digits, '.', '_', '-')")
    return value


def _path(environ: Mapping[str, str], var: str) -> Path:
    value = _required(environ, var)
    if "\0" in value:
        raise SettingsError(f"{var}: contains a NUL character")
    return Path(value)


def _relative(environ: Mapping[str, str], var: str) -> str:
    value = environ.get(var, "")
    if value and (value.startswith("/") or ".." in value.split("/") or "\0" in value):
        raise SettingsError(f"{var}: {value!r} must be a relative path inside the source, without '..'")
    return value


def _int(environ: Mapping[str, str], var: str, default: int, *, minimum: int) -> int:
    raw = environ.get(var, "")
    if raw == "":
        return default
    if not raw.isascii() or not raw.isdigit() or int(raw) < minimum:
        raise SettingsError(f"{var}: expected an integer >= {minimum}, got {raw!r}")
    return int(raw)


def _optional_int(environ: Mapping[str, str], var: str) -> int | None:
    """An integer >= 1, or None when unset (no limit)."""
    return _int(environ, var, 0, minimum=1) or None


def _choice(environ: Mapping[str, str], var: str, default: str, choices: tuple[str, ...]) -> str:
    value = environ.get(var, "") or default
    if value not in choices:
        raise SettingsError(f"{var}: expected one of {', '.join(choices)}, got {value!r}")
    return value


def _workers(environ: Mapping[str, str]) -> int | Literal["auto", "adaptive"]:
    if environ.get("TEP_WORKERS", "auto") in ("", "auto"):
        return "auto"
    if environ["TEP_WORKERS"] == ADAPTIVE:
        return ADAPTIVE
    return _int(environ, "TEP_WORKERS", 1, minimum=1)


def _pytest_args(environ: Mapping[str, str]) -> tuple[str, ...]:
    raw = environ.get("TEP_PYTEST_ARGS", "") or "[]"
    try:
        args = json.loads(raw)
    except json.JSONDecodeError as e:
        raise SettingsError(f"TEP_PYTEST_ARGS: not JSON ({e.msg}): {raw!r}") from None
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise SettingsError(f"TEP_PYTEST_ARGS: expected a JSON list of strings, got {raw!r}")
    for arg, following in zip(args, [*args[1:], ""], strict=False):
        name = arg.split("=", 1)[0]
        if name in RESERVED_ARGS:
            raise SettingsError(f"TEP_PYTEST_ARGS: {arg!r} is set by the runner and may not be overridden")
        if name in OWN_SETTING_ARGS:
            raise SettingsError(f"TEP_PYTEST_ARGS: {arg!r}: use {OWN_SETTING_ARGS[name]} instead")
        plugin = following if arg == "-p" else arg[2:] if arg.startswith("-p") else ""
        if plugin.startswith("no:") and plugin[3:] in REQUIRED_PLUGINS:
            raise SettingsError(f"TEP_PYTEST_ARGS: '-p {plugin}' would disable what the runner reports from")
    return tuple(args)


def _shard_index(environ: Mapping[str, str], shards: int) -> int:
    var = "TEP_SHARD_INDEX" if environ.get("TEP_SHARD_INDEX") else "JOB_COMPLETION_INDEX"
    if shards > 1 and not environ.get(var):
        raise SettingsError("TEP_SHARD_INDEX: missing (nor JOB_COMPLETION_INDEX) while TEP_SHARDS > 1")
    index = _int(environ, var, 0, minimum=0)
    if index >= shards:
        raise SettingsError(f"{var}: {index} is not below TEP_SHARDS ({shards})")
    return index
