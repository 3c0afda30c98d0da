"""`tep run --local`: a TestPlan file run on this machine exactly as a runner pod runs it.

The plan is read and validated by the operator's own code, turned into the same `TEP_*`
settings a pod gets (`runnerenv.runner_env`), and handed to the runner's public entry
point, `tep_runner.run`. Only what a pod gets from the cluster is replaced by local
folders: the tests and the reports volume.
"""

import datetime as dt
import json
import os
import pathlib
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

import yaml

from tep_operator import names, runnerenv
from tep_operator.plan import Plan, PlanError, cpu_workers, read_plan
from tep_operator.runs import counts_text
from tep_operator.schema import schema_problems


class LocalRunError(ValueError):
    """The plan file or the local folders cannot be used."""


@dataclass(frozen=True)
class LocalRun:
    plan: Plan
    tests: pathlib.Path
    reports: pathlib.Path
    environ: dict[str, str]
    skipped_env: tuple[str, ...]  # env entries a laptop cannot resolve (valueFrom, envFrom)


def load_plan_file(path: pathlib.Path) -> dict[str, Any]:
    """The TestPlan document of a YAML file (which may hold other documents too)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LocalRunError(f"{path}: cannot read the plan: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise LocalRunError(f"{path}: cannot read the plan: not UTF-8 text (byte {exc.start})") from None
    try:
        documents = [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    except yaml.YAMLError as exc:
        raise LocalRunError(yaml_error_text(path, exc)) from None
    plans = [d for d in documents if d.get("kind") == names.KIND]
    if len(plans) != 1:
        raise LocalRunError(f"{path}: expected one document of kind {names.KIND}, found {len(plans)}")
    return plans[0]


def yaml_error_text(path: pathlib.Path, exc: yaml.YAMLError) -> str:
    """`FILE:LINE:COLUMN: YAML syntax error: what`, the line and column counted from 1."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    parts = (getattr(exc, "context", None), getattr(exc, "problem", None))
    what = ": ".join(str(part) for part in parts if part)
    return f"{where}: YAML syntax error: {what or exc}"


def check_plan(body: Mapping[str, Any]) -> Plan:
    """A plan file's TestPlan as a `Plan`: the CRD's schema first, then plan.py's semantic checks.

    Raises `PlanError` with every problem of both; a field the schema already named (or one
    inside it, or around it) is not named again by the semantic checks.
    """
    problems = schema_problems(body)
    if any(_nested(p.field, top) for p in problems for top in ("apiVersion", "kind", "metadata")):
        # Not a TestPlan the schema could check, or bad metadata, which read_plan trusts as it
        # may: on a cluster the API server has checked it.
        raise PlanError(problems)
    try:
        plan = read_plan(body)
    except PlanError as exc:
        problems += [p for p in exc.problems if not any(_nested(p.field, q.field) for q in problems)]
    if problems:
        raise PlanError(problems)
    return plan


def _nested(a: str, b: str) -> bool:
    """Whether one field path is the other or inside it (`spec.pytest.args` and `spec.pytest.args[0]`)."""
    short, long = sorted((a, b), key=len)
    return long == short or long.startswith((f"{short}.", f"{short}["))


def default_source(plan: Plan, plan_file: pathlib.Path) -> pathlib.Path:
    """The suite's source on this machine when --tests is not given.

    A configMap or git source has no local copy, so the convention is a `tests/` folder
    beside the plan file (the folder its ConfigMap is made from); an image source's path
    is used as it is. For git, pytest runs in its `source.git.path` inside the folder.
    """
    if plan.source.kind == "image":
        return pathlib.Path(plan.source.path)
    return plan_file.parent / "tests"


def plain_env(env: Iterable[Mapping[str, Any]]) -> tuple[dict[str, str], tuple[str, ...]]:
    values = {var["name"]: str(var["value"]) for var in env if "value" in var}
    skipped = tuple(var["name"] for var in env if "value" not in var)
    return values, skipped


def prepare(
    plan_file: pathlib.Path,
    tests: pathlib.Path | None,
    reports: pathlib.Path,
    base_environ: Mapping[str, str],
    termination_log: pathlib.Path,
) -> LocalRun:
    try:
        plan = check_plan(load_plan_file(plan_file))
    except PlanError as exc:
        raise LocalRunError(f"{plan_file}: {exc}") from None
    source = (tests or default_source(plan, plan_file)).resolve()
    if not source.is_dir():
        raise LocalRunError(f"tests folder {source} does not exist (give it with --tests DIR)")
    user_env, skipped = plain_env(plan.env)
    if plan.env_from:
        skipped += tuple(f"envFrom[{i}]" for i in range(len(plan.env_from)))
    settings = runnerenv.runner_env(
        plan,
        source=str(source),
        reports=str(reports.resolve()),
        termination_log=str(termination_log),
        auto_workers=cpu_workers(plan.resources),
    )
    return LocalRun(plan, source, reports.resolve(), {**base_environ, **user_env, **settings}, skipped)


def summary_text(message: Mapping[str, Any], reports: pathlib.Path) -> str:
    """The end-of-run lines: result, counts, duration, where the report is."""
    # A run in which no test ran says why instead of "0 tests" (--collect-only, a conftest that broke).
    said = counts_text(message) if message.get("total") or not message.get("reason") else message["reason"]
    lines = [
        f"tep: {message.get('result', 'Error')}: {said} "
        f"in {message.get('durationSeconds', 0):.1f}s with {message.get('workers', 0)} workers",
    ]
    if message.get("reason") and said != message["reason"]:
        lines.append(f"tep: reason: {message['reason']}")
    for test in message.get("failedTests") or []:
        lines.append(f"tep: failed: {test}")
    for test in message.get("timedOut") or []:
        lines.append(f"tep: timed out: {test}")
    if message.get("reportPath"):
        lines.append(f"tep: report: {reports / message['reportPath']}")
    return "\n".join(lines)


def run_local(
    plan_file: pathlib.Path,
    *,
    tests: pathlib.Path | None,
    reports: pathlib.Path,
    out: TextIO,
) -> int:
    """Run the plan through the runner; the runner's exit code (0 passed, 1 failed, 2 broken)."""
    import tep_runner

    with tempfile.TemporaryDirectory(prefix="tep-local-") as scratch:
        termination_log = pathlib.Path(scratch) / "termination-log"
        local = prepare(plan_file, tests, reports, os.environ, termination_log)
        for name in local.skipped_env:
            print(f"tep: {name} comes from the cluster (valueFrom/envFrom); not set locally", file=out)
        print(f"tep: running {local.plan.namespace}/{local.plan.name} on {local.tests}", file=out, flush=True)
        if local.plan.shards > 1:
            code, message = _run_shards(local, pathlib.Path(scratch), out)
        else:
            code = tep_runner.run(local.environ)
            try:
                message = json.loads(termination_log.read_text())
            except (OSError, json.JSONDecodeError):
                message = {"result": "Error", "reason": "the runner wrote no summary"}
    print(summary_text(message, local.reports), file=out)
    return code


def _run_shards(local: LocalRun, scratch: pathlib.Path, out: TextIO) -> tuple[int, dict[str, Any]]:
    """The plan's N shards as N runner processes at once, as the Indexed Job's pods run them; the last to
    finish merges them (tep_runner.shell), and its run-level summary.json is the run's message."""
    from tep_runner.runid import run_id_for
    from tep_runner.summary import EXIT_CODES

    run_id = run_id_for("", "", dt.datetime.now(dt.UTC), secrets.token_hex(4))
    processes = []
    for index in range(local.plan.shards):
        env = {
            **local.environ,
            "TEP_RUN_ID": run_id,
            "TEP_SHARD_INDEX": str(index),
            "TEP_TERMINATION_LOG": str(scratch / f"termination-log-{index}"),
        }
        processes.append(subprocess.Popen([sys.executable, "-m", "tep_runner"], env=env))
    print(f"tep: {len(processes)} shards of run {run_id} started", file=out, flush=True)
    for process in processes:
        process.wait()
    summary = local.reports / local.plan.namespace / local.plan.name / run_id / "summary.json"
    try:
        message: dict[str, Any] = json.loads(summary.read_text())
    except (OSError, json.JSONDecodeError):
        return 2, {"result": "Error", "reason": "the shards wrote no merged summary"}
    return EXIT_CODES[message.get("result", "Error")], message
