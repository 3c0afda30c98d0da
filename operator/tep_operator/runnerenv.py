"""A plan's settings as the runner reads them: the `TEP_*` environment variables.

One function serves the runner pod (rendered into the container's env) and
`tep run --local` (passed to `tep_runner.run`), so the two cannot drift apart.
docs/architecture.md has the table.
"""

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tep_operator.plan import Plan

TESTS_MOUNT = "/tests"
WORKSPACE_MOUNT = "/workspace"
GIT_CHECKOUT = f"{WORKSPACE_MOUNT}/src"
REPORTS_MOUNT = "/reports"
TERMINATION_LOG = "/dev/termination-log"
AUTO_WORKERS = "PYTEST_XDIST_AUTO_NUM_WORKERS"

# Names the operator sets; a plan's own env may not override them.
RESERVED = frozenset(
    {
        "TEP_NAMESPACE",
        "TEP_PLAN",
        "TEP_SOURCE_ROOT",
        "TEP_TESTS_DIR",
        "TEP_PYTEST_CONFIG_FILE",
        "TEP_PYTEST_ROOT_DIR",
        "TEP_REPORTS_DIR",
        "TEP_JOB_NAME",
        "TEP_RUN_ID",
        "TEP_WORKERS",
        "TEP_DIST",
        "TEP_RERUNS",
        "TEP_PYTEST_ARGS",
        "TEP_KEEP_LAST",
        "TEP_MAX_AGE_DAYS",
        "TEP_SHARDS",
        "TEP_SHARD_INDEX",
        "TEP_TERMINATION_LOG",
        "TEP_ACTIVE_DEADLINE_SECONDS",
        "TEP_TIMEOUT_SECONDS",
        "TEP_ORDER",
        "TEP_MAX_WORKERS",
    }
)


def source_root(plan: "Plan") -> str:
    """The root of the suite's source inside the runner pod, where its owners would run pytest."""
    if plan.source.kind == "configMap":
        return TESTS_MOUNT
    if plan.source.kind == "git":
        return GIT_CHECKOUT
    return plan.source.path


def tests_dir(plan: "Plan", source: str) -> str:
    """Where pytest runs: the source root, or for git the folder `source.git.path` names inside it."""
    if plan.source.kind != "git" or plan.source.path in ("", "."):
        return source
    return f"{source}/{plan.source.path.strip('/')}"


def runner_env(
    plan: "Plan",
    *,
    source: str,
    reports: str,
    termination_log: str,
    auto_workers: int | None,
) -> dict[str, str]:
    """The runner's settings for one plan, as environment variables."""
    env = {
        "TEP_NAMESPACE": plan.namespace,
        "TEP_PLAN": plan.name,
        "TEP_SOURCE_ROOT": source,
        "TEP_TESTS_DIR": tests_dir(plan, source),
        "TEP_REPORTS_DIR": reports,
        "TEP_WORKERS": plan.workers,
        "TEP_DIST": plan.dist,
        "TEP_RERUNS": str(plan.reruns),
        "TEP_PYTEST_ARGS": json.dumps(list(plan.args)),
        "TEP_KEEP_LAST": str(plan.keep_last),
        "TEP_MAX_AGE_DAYS": str(plan.max_age_days),
        "TEP_SHARDS": str(plan.shards),
        "TEP_TERMINATION_LOG": termination_log,
        # The runner stops pytest at the deadline itself (the local run's only limit; in a pod the kubelet's
        # SIGTERM at the pod's activeDeadlineSeconds comes first) and names the tests it was running.
        "TEP_ACTIVE_DEADLINE_SECONDS": str(plan.active_deadline_seconds),
    }
    if plan.timeout_seconds is not None:
        env["TEP_TIMEOUT_SECONDS"] = str(plan.timeout_seconds)
    env["TEP_ORDER"] = plan.order
    if plan.max_workers is not None:
        env["TEP_MAX_WORKERS"] = str(plan.max_workers)
    # Unset, pytest finds its configuration and rootdir itself, as in the suite's own checkout.
    if plan.config_file:
        env["TEP_PYTEST_CONFIG_FILE"] = plan.config_file
    if plan.root_dir:
        env["TEP_PYTEST_ROOT_DIR"] = plan.root_dir
    # xdist's `-n auto` counts the node's cores, not the pod's CPU share.
    if plan.workers == "auto" and auto_workers is not None:
        env[AUTO_WORKERS] = str(auto_workers)
    return env
