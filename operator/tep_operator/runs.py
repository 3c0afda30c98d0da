"""Runs: a finished Job and its Pods become `status.lastRun` and a history entry.

Pull, not push (docs/design.md §4): the runner leaves a JSON summary as its container's
termination message; a run that left none (OOMKilled, deadline exceeded, image never
pulled, evicted) is still reported, as `Error` with the reason Kubernetes gives.
"""

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tep_operator import names
from tep_operator.status import (
    LAST_RUN_SUCCEEDED,
    PHASE_INVALID,
    PHASE_RUNNING,
    condition,
    merge_conditions,
)
from tep_runner.balance import imbalance
from tep_runner.shards import failed_once

RUNNER_CONTAINER = "runner"
MESSAGE_VERSION = 1
MAX_FAILED_TESTS = 20
COUNTS = ("total", "passed", "failed", "errors", "skipped", "xfailed", "xpassed", "flaky")
HISTORY_FIELDS = (
    "name",
    "trigger",
    "result",
    "reason",
    "startTime",
    "completionTime",
    "durationSeconds",
    *COUNTS,
)
_SHARD_FOLDER = re.compile(r"/shard-\d+/")

# Job failure reasons, in words a test author understands.
JOB_FAILURE_REASONS = {
    "DeadlineExceeded": "the run exceeded spec.activeDeadlineSeconds and was stopped",
    "BackoffLimitExceeded": "the runner pod failed",
    "FailedIndexes": "a shard's pod failed",
}
WAITING_REASONS = (
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
)


def job_conditions(job: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {
        c.get("type", ""): c
        for c in (job.get("status") or {}).get("conditions") or []
        if c.get("status") == "True"
    }


def job_finished(job: Mapping[str, Any]) -> bool:
    return bool({"Complete", "Failed"} & set(job_conditions(job)))


def job_active(job: Mapping[str, Any]) -> bool:
    """A run in progress: created and not finished (pods may still be pending)."""
    return not job_finished(job) and not (job.get("metadata") or {}).get("deletionTimestamp")


def parse_message(text: str | None) -> dict[str, Any] | None:
    """The runner's summary (version 1), or None if the text is not one."""
    if not text:
        return None
    try:
        message = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(message, dict) or message.get("v") != MESSAGE_VERSION or "result" not in message:
        return None
    return message


def _runner_state(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return next((s for s in statuses if s.get("name") == RUNNER_CONTAINER), {})


def _deadline_text(spec: Mapping[str, Any]) -> str:
    seconds = spec.get("activeDeadlineSeconds")
    return (
        f"spec.activeDeadlineSeconds ({seconds} s) exceeded"
        if seconds
        else "spec.activeDeadlineSeconds exceeded"
    )


def deadline_reason(job: Mapping[str, Any], pod: Mapping[str, Any], message: Mapping[str, Any]) -> str | None:
    """The reason of a runner that was stopped by a deadline and still left its summary; None otherwise.

    The kubelet fails a pod at its activeDeadlineSeconds with status.reason DeadlineExceeded after SIGTERM;
    the Job controller marks a Job past its own (later, backstop) deadline so. The runner, which only saw the
    signal, reported the counts and the tests it stopped; the reason then also says what sent the signal.
    """
    failed = (job_conditions(job).get("Failed") or {}).get("reason")
    if message.get("result") != "Error" or "DeadlineExceeded" not in (
        (pod.get("status") or {}).get("reason"),
        failed,
    ):
        return None
    runner = str(message.get("reason") or "the runner was stopped")
    if runner.startswith("activeDeadlineSeconds"):  # the runner's own timer: it says so already
        return runner
    return f"DeadlineExceeded: {_deadline_text(pod.get('spec') or {})}; {runner}"


def pod_failure_reason(pod: Mapping[str, Any]) -> str | None:
    """Why a runner pod ended (or never started), from what Kubernetes recorded."""
    status = pod.get("status") or {}
    if status.get("reason") == "Evicted":
        return f"Evicted: {status.get('message') or 'the pod was evicted from its node'}"
    if status.get("reason") == "DeadlineExceeded":  # killed by the kubelet before the runner wrote a summary
        return f"DeadlineExceeded: {_deadline_text(pod.get('spec') or {})}; the runner left no summary"
    state = _runner_state(pod).get("state") or {}
    terminated = state.get("terminated") or {}
    if terminated.get("reason") == "OOMKilled":
        return "OOMKilled: the runner ran out of memory (raise spec.resources.limits.memory)"
    waiting = state.get("waiting") or {}
    if waiting.get("reason") in WAITING_REASONS:
        return f"{waiting['reason']}: {waiting.get('message') or 'the runner container could not start'}"
    for init in status.get("initContainerStatuses") or []:
        init_terminated = (init.get("state") or {}).get("terminated") or {}
        if init_terminated.get("exitCode"):
            return f"init container {init.get('name')} failed with exit code {init_terminated['exitCode']}"
        init_waiting = (init.get("state") or {}).get("waiting") or {}
        if init_waiting.get("reason") in WAITING_REASONS:
            return f"{init_waiting['reason']}: {init_waiting.get('message') or ''}".rstrip(": ")
    if terminated:
        return (
            f"the runner exited with code {terminated.get('exitCode')} ({terminated.get('reason', 'Error')}) "
            "without a summary"
        )
    return None


def is_start_failure(reason: str) -> bool:
    """A reason that keeps the runner from starting at all (the Job waits for its deadline)."""
    return reason.startswith(WAITING_REASONS)


def job_failure_reason(job: Mapping[str, Any]) -> str | None:
    failed = job_conditions(job).get("Failed")
    if not failed:
        return None
    reason = failed.get("reason", "")
    explained = JOB_FAILURE_REASONS.get(reason)
    return f"{reason}: {explained}" if explained else f"{reason}: {failed.get('message', '')}".rstrip(": ")


def _shard_index(pod: Mapping[str, Any]) -> int:
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    try:
        return int(annotations.get("batch.kubernetes.io/job-completion-index", 0))
    except ValueError:
        return 0


Attempt = tuple[Mapping[str, Any], dict[str, Any] | None]  # a pod and its parsed summary


def _latest_attempts(pods: Iterable[Mapping[str, Any]]) -> dict[int, Attempt]:
    """One pod per shard: a message-bearing pod if any, else the newest."""
    chosen: dict[int, Attempt] = {}
    for pod in sorted(pods, key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or ""):
        index = _shard_index(pod)
        message = parse_message(_terminated_message(pod))
        if index not in chosen or message is not None or chosen[index][1] is None:
            chosen[index] = (pod, message)
    return chosen


def _terminated_message(pod: Mapping[str, Any]) -> str | None:
    return ((_runner_state(pod).get("state") or {}).get("terminated") or {}).get("message")


def parse_time(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def run_report_path(path: str) -> str:
    """A shard's report path -> the run-level (merged) report beside the shard folders."""
    return _SHARD_FOLDER.sub("/", path, count=1)


def run_result(job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """`status.lastRun` of a finished Job; None while it still runs."""
    if not job_finished(job):
        return None
    metadata = job.get("metadata") or {}
    job_status = job.get("status") or {}
    shards = int((job.get("spec") or {}).get("completions") or 1)
    attempts = _latest_attempts(pods)
    messages = {index: message for index, (_pod, message) in attempts.items()}
    found = [m for m in messages.values() if m is not None]

    start = job_status.get("startTime") or metadata.get("creationTimestamp")
    failed_condition = job_conditions(job).get("Failed") or {}
    end = job_status.get("completionTime") or failed_condition.get("lastTransitionTime")
    run: dict[str, Any] = {
        "name": metadata.get("name", ""),
        "trigger": (metadata.get("labels") or {}).get(names.LABEL_TRIGGER, names.TRIGGER_SCHEDULE),
        "startTime": start,
        "completionTime": end,
        "shards": shards,
        **dict.fromkeys(COUNTS, 0),
        "workers": 0,
        "failedTests": [],
    }
    timed_out: list[str] = []
    for message in found:
        for key in COUNTS:
            run[key] += int(message.get(key) or 0)
        run["workers"] += int(message.get("workers") or 0)
        timed_out.extend(message.get("timedOut") or [])
    failed, repeated = failed_once(m.get("failedTests") or [] for m in found)
    run["errors"] -= repeated
    run["total"] -= repeated
    run["failedTests"] = failed[:MAX_FAILED_TESTS]
    if timed_out:  # stopped at the deadline, or failed by pytest-timeout (also in failedTests)
        run["timedOut"] = timed_out[:MAX_FAILED_TESTS]
    if found:
        run["reportPath"] = (
            run_report_path(str(found[0].get("reportPath", "")))
            if shards > 1
            else found[0].get("reportPath", "")
        )

    missing = sorted(set(range(shards)) - {i for i, m in messages.items() if m is not None})
    errors = [
        deadline_reason(job, pod, m) or m.get("reason") or "the runner reported an error"
        for pod, m in attempts.values()
        if m is not None and m.get("result") == "Error"
    ]
    if missing:
        reasons = [pod_failure_reason(attempts[i][0]) for i in missing if i in attempts]
        reason = next((r for r in reasons if r), None) or job_failure_reason(job) or "the run left no summary"
        prefix = f"shard {missing[0]}: " if shards > 1 else ""
        run.update(result="Error", reason=prefix + reason)
    elif errors:
        run.update(result="Error", reason=errors[0])
    elif run["failed"] or run["errors"] or any(m.get("result") == "Failed" for m in found):
        run["result"] = "Failed"
    else:
        run["result"] = "Passed"
    # A run that did not break may still say why it stopped early or ran nothing (-x, --collect-only).
    notes = [m["reason"] for m in found if m.get("reason") and m.get("result") == run["result"] != "Error"]
    if notes and "reason" not in run:
        run["reason"] = notes[0]

    durations = [float(m.get("durationSeconds") or 0) for m in found]
    if shards > 1 and durations and not missing:
        run["imbalance"] = imbalance(durations)
    used = [float(m["cpuUtilization"]) for m in found if isinstance(m.get("cpuUtilization"), int | float)]
    if used:
        run["cpuUtilization"] = round(sum(used) / len(used), 3)
    started, ended = parse_time(start), parse_time(end)
    if durations and not missing:
        run["durationSeconds"] = round(max(durations), 1)
    elif started and ended:
        run["durationSeconds"] = round((ended - started).total_seconds(), 1)
    return {key: value for key, value in run.items() if value is not None}


def history_entry(run: Mapping[str, Any]) -> dict[str, Any]:
    return {key: run[key] for key in HISTORY_FIELDS if key in run}


def _newest_first(runs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return sorted(
        (dict(r) for r in runs), key=lambda r: (r.get("startTime") or "", r.get("name", "")), reverse=True
    )


def record_run(
    old: Mapping[str, Any], run: Mapping[str, Any], history_limit: int, now: dt.datetime
) -> dict[str, Any] | None:
    """The status patch that records a finished run; None if it is recorded already.

    Idempotent and order-free: runs found late (an operator catching up after downtime)
    slot into history by start time, and only the newest run becomes `lastRun`.
    """
    history = list(old.get("history") or [])
    last = old.get("lastRun") or {}
    if run["name"] == last.get("name") or any(h.get("name") == run["name"] for h in history):
        return None
    history = _newest_first([*history, history_entry(run)])[:history_limit]
    patch: dict[str, Any] = {"history": history}
    is_newest = (run.get("startTime") or "", run["name"]) >= (
        last.get("startTime") or "",
        last.get("name", ""),
    )
    if is_newest:
        patch["lastRun"] = dict(run)
        conditions = old.get("conditions") or []
        passed = run["result"] == "Passed"
        counts = (
            f"{run.get('passed', 0)} passed, {run.get('failed', 0)} failed, {run.get('errors', 0)} errors"
        )
        message = f"{run['name']}: {run['result']}: {counts}"
        if run.get("reason"):
            message += f" ({run['reason']})"
        patch["conditions"] = merge_conditions(
            conditions,
            [
                condition(
                    conditions,
                    LAST_RUN_SUCCEEDED,
                    passed,
                    run["result"],
                    message,
                    int(old.get("observedGeneration") or 0),
                    now,
                )
            ],
        )
    completed = run.get("completionTime") or ""
    if run["result"] == "Passed" and completed > (old.get("lastSuccessfulTime") or ""):
        patch["lastSuccessfulTime"] = completed
    return patch


def phase_after(old_phase: str | None, idle_phase: str | None, active_runs: int) -> str | None:
    """The phase while runs are active or once they are over; None: leave it."""
    if old_phase == PHASE_INVALID or idle_phase is None:
        return None  # an invalid spec is the more urgent news
    return PHASE_RUNNING if active_runs else idle_phase


def counts_text(run: Mapping[str, Any]) -> str:
    """ "9 tests, 8 passed, 1 failed, 0 errors, 0 skipped, 0 xfailed, 0 xpassed, 0 flaky" of a run."""
    return f"{run.get('total', 0)} tests, " + ", ".join(f"{run.get(key, 0)} {key}" for key in COUNTS[1:])


def event_for(run: Mapping[str, Any]) -> tuple[str, str, str]:
    """(type, reason, message) of the Event that announces a finished run."""
    where = f"; report {run['reportPath']}" if run.get("reportPath") else ""
    why = f" ({run['reason']})" if run.get("reason") else ""
    text = f"{run['name']} {run['result']}: {counts_text(run)}{why}{where}"
    if run["result"] == "Passed":
        return "Normal", "RunSucceeded", text
    return "Warning", "RunFailed", text


def run_id(job_name: str, now: dt.datetime) -> str:
    """The report folder of a manual run, as the runner derives it for scheduled runs."""
    return f"{now.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}-{job_name.rsplit('-', 1)[-1]}"
