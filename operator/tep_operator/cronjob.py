"""A `Plan` as Kubernetes objects: the CronJob, and the Job of a manual run.

Both come from one job template, so a manual run is exactly a scheduled run started now.
Pure: the operator's configuration comes in as an argument; nothing here talks to a cluster.
"""

import copy
import json
from collections.abc import Mapping
from typing import Any

from tep_operator import names, runnerenv
from tep_operator.config import OperatorConfig
from tep_operator.plan import Plan, cpu_workers
from tep_runner.stopping import STOP_SECONDS

RUNNER_CONTAINER = "runner"
RUNNER_UID = 65532  # the runner image's non-root user
# Finished Jobs kept by the CronJob controller: enough for the operator to read the
# results after it was down for a while (catch-up), few enough to stay tidy.
JOBS_HISTORY_LIMIT = 3
# A manual Job has no CronJob to prune it; the operator has read it long before this.
MANUAL_JOB_TTL_SECONDS = 24 * 3600
GIT_SECRET_MOUNT = "/etc/tep/git"
# The plan's activeDeadlineSeconds is the pod's, which the kubelet enforces to the second with SIGTERM and
# after which the pod and its termination message remain. From SIGTERM the runner takes up to STOP_SECONDS
# to stop pytest; the rest of the grace is for writing summary.json and the message on a slow volume.
TERMINATION_GRACE_SECONDS = STOP_SECONDS + 15
# The Job's deadline is only a backstop (a pod that never started, a kubelet that never acted): the Job
# controller deletes the pods of a Job past its deadline, and a deleted pod takes its message with it. So it
# comes after the pod's deadline, its grace, and the time from the Job's start to the pod's (scheduling).
JOB_DEADLINE_MARGIN_SECONDS = TERMINATION_GRACE_SECONDS + 30
SPEC_HASH = "tep.dev/spec-hash"

RESTRICTED_CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def owner_reference(plan: Plan) -> dict[str, Any]:
    # No blockOwnerDeletion: it would need update rights on testplans/finalizers.
    return {
        "apiVersion": names.API_VERSION,
        "kind": names.KIND,
        "name": plan.name,
        "uid": plan.uid,
        "controller": True,
    }


def effective_resources(plan: Plan, config: OperatorConfig) -> Mapping[str, Any]:
    return plan.resources or config.runner_resources


def object_meta(plan: Plan, name: str, extra_labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": plan.namespace,
        "labels": {**names.labels(plan.name), **(extra_labels or {})},
        "annotations": names.annotations(plan.name),
        "ownerReferences": [owner_reference(plan)],
    }


def _volumes(plan: Plan, config: OperatorConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Volumes of the pod and the runner container's mounts of them."""
    volumes: list[dict[str, Any]] = [
        {"name": "reports", "persistentVolumeClaim": {"claimName": plan.claim_name or config.reports_claim}},
        # The root filesystem is read-only; pytest, xdist and git need a scratch space.
        {"name": "tmp", "emptyDir": {}},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "reports", "mountPath": runnerenv.REPORTS_MOUNT},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    if plan.source.kind == "configMap":
        volumes.append({"name": "tests", "configMap": {"name": plan.source.name, "defaultMode": 0o444}})
        mounts.append({"name": "tests", "mountPath": runnerenv.TESTS_MOUNT, "readOnly": True})
    elif plan.source.kind == "git":
        volumes.append({"name": "workspace", "emptyDir": {}})
        mounts.append({"name": "workspace", "mountPath": runnerenv.WORKSPACE_MOUNT})
        if plan.source.secret_name:
            volumes.append(
                {
                    "name": "git-credentials",
                    "secret": {"secretName": plan.source.secret_name, "defaultMode": 0o440},
                }
            )
    return volumes, mounts


def _git_init_container(plan: Plan, image: str, pull_policy: str) -> dict[str, Any]:
    mounts: list[dict[str, Any]] = [
        {"name": "workspace", "mountPath": runnerenv.WORKSPACE_MOUNT},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    if plan.source.secret_name:
        mounts.append({"name": "git-credentials", "mountPath": GIT_SECRET_MOUNT, "readOnly": True})
    return {
        "name": "git-clone",
        "image": image,
        "imagePullPolicy": pull_policy,
        "args": ["git-clone"],
        "env": [
            {"name": "TEP_GIT_URL", "value": plan.source.url},
            {"name": "TEP_GIT_REF", "value": plan.source.ref},
            {"name": "TEP_GIT_DEST", "value": runnerenv.GIT_CHECKOUT},
            {"name": "HOME", "value": "/tmp"},
        ],
        "volumeMounts": mounts,
        "securityContext": copy.deepcopy(RESTRICTED_CONTAINER_SECURITY),
    }


def _runner_env(plan: Plan, config: OperatorConfig, run_id: str | None) -> list[dict[str, Any]]:
    settings = runnerenv.runner_env(
        plan,
        source=runnerenv.source_root(plan),
        reports=runnerenv.REPORTS_MOUNT,
        termination_log=runnerenv.TERMINATION_LOG,
        auto_workers=cpu_workers(effective_resources(plan, config)),
    )
    env: list[dict[str, Any]] = [{"name": key, "value": value} for key, value in settings.items()]
    env.append(
        {
            "name": "TEP_JOB_NAME",
            "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{names.LABEL_JOB_NAME}']"}},
        }
    )
    if run_id:
        env.append({"name": "TEP_RUN_ID", "value": run_id})
    env.append({"name": "HOME", "value": "/tmp"})
    return env + [dict(var) for var in plan.env]


def pod_spec(plan: Plan, config: OperatorConfig, run_id: str | None = None) -> dict[str, Any]:
    image = plan.image or config.runner_image
    pull_policy = config.runner_image_pull_policy
    volumes, mounts = _volumes(plan, config)
    container: dict[str, Any] = {
        "name": RUNNER_CONTAINER,
        "image": image,
        "imagePullPolicy": pull_policy,
        "env": _runner_env(plan, config, run_id),
        "volumeMounts": mounts,
        "securityContext": copy.deepcopy(RESTRICTED_CONTAINER_SECURITY),
        # The runner writes its JSON summary here; the operator reads it back (DESIGN.md §4).
        # No FallbackToLogsOnError: a log tail in place of the summary would be misread.
        "terminationMessagePath": runnerenv.TERMINATION_LOG,
        "terminationMessagePolicy": "File",
    }
    if plan.env_from:
        container["envFrom"] = [dict(source) for source in plan.env_from]
    resources = effective_resources(plan, config)
    if resources:
        container["resources"] = copy.deepcopy(dict(resources))
    template = plan.pod_template
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "activeDeadlineSeconds": plan.active_deadline_seconds,
        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
        # Pull, not push: the runner never talks to the API server (DESIGN.md §4).
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUNNER_UID,
            "runAsGroup": RUNNER_UID,
            # Makes the reports volume writable by the non-root runner.
            "fsGroup": RUNNER_UID,
            "fsGroupChangePolicy": "OnRootMismatch",
            "seccompProfile": {"type": "RuntimeDefault"},
            **copy.deepcopy(dict(template.get("securityContext") or {})),
        },
        "containers": [container],
        "volumes": volumes,
    }
    if plan.source.kind == "git":
        spec["initContainers"] = [_git_init_container(plan, image, pull_policy)]
    if plan.service_account_name:
        spec["serviceAccountName"] = plan.service_account_name
    for key in ("nodeSelector", "tolerations", "affinity", "imagePullSecrets"):
        if template.get(key):
            spec[key] = copy.deepcopy(template[key])
    return spec


def job_spec(plan: Plan, config: OperatorConfig, trigger: str, run_id: str | None = None) -> dict[str, Any]:
    """The Job spec of one run; the CronJob's jobTemplate and a manual Job share it."""
    template_meta = plan.pod_template.get("metadata") or {}
    pod_labels = {
        **(template_meta.get("labels") or {}),
        **names.labels(plan.name),
        names.LABEL_TRIGGER: trigger,
    }
    pod_annotations = {**(template_meta.get("annotations") or {}), **names.annotations(plan.name)}
    spec: dict[str, Any] = {
        "activeDeadlineSeconds": plan.active_deadline_seconds + JOB_DEADLINE_MARGIN_SECONDS,
        "template": {
            "metadata": {"labels": pod_labels, "annotations": pod_annotations},
            "spec": pod_spec(plan, config, run_id),
        },
    }
    if plan.shards == 1:
        # A failed test run is a result, not a reason to run the suite again.
        spec["backoffLimit"] = 0
    else:
        # One pod per shard; a shard with failing tests fails its index only, so the
        # other shards still finish and the merged report is complete.
        spec.update(
            completionMode="Indexed",
            completions=plan.shards,
            parallelism=plan.shards,
            backoffLimitPerIndex=0,
        )
    return spec


def render_cronjob(plan: Plan, config: OperatorConfig) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "schedule": plan.crontab,
        "suspend": not plan.enabled,
        "concurrencyPolicy": plan.concurrency_policy,
        # Always set: without it a CronJob that missed 100 schedules stops for good.
        "startingDeadlineSeconds": plan.starting_deadline_seconds,
        "successfulJobsHistoryLimit": JOBS_HISTORY_LIMIT,
        "failedJobsHistoryLimit": JOBS_HISTORY_LIMIT,
        "jobTemplate": {
            "metadata": {
                "labels": {**names.labels(plan.name), names.LABEL_TRIGGER: names.TRIGGER_SCHEDULE},
                "annotations": names.annotations(plan.name),
            },
            "spec": job_spec(plan, config, names.TRIGGER_SCHEDULE),
        },
    }
    if plan.time_zone:
        spec["timeZone"] = plan.time_zone
    manifest: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": object_meta(plan, names.cronjob_name(plan.name)),
        "spec": spec,
    }
    # Like a Deployment's pod-template-hash: a cheap "is this what we last applied?".
    manifest["metadata"]["annotations"][SPEC_HASH] = names.stable_hash(
        json.dumps(manifest, sort_keys=True), 16
    )
    return manifest


def same_spec(desired: Mapping[str, Any], live: Mapping[str, Any]) -> bool:
    """Whether `live` was applied from `desired` (hand edits aside: `drifted` finds those)."""
    applied = (live.get("metadata") or {}).get("annotations", {}).get(SPEC_HASH)
    return bool(applied == desired["metadata"]["annotations"][SPEC_HASH])


def render_manual_job(plan: Plan, config: OperatorConfig, request: str, run_id: str) -> dict[str, Any]:
    """The Job of a run-now request (annotation `tep.dev/run-requested-at` = `request`)."""
    metadata = object_meta(
        plan, names.manual_job_name(plan.name, request), {names.LABEL_TRIGGER: names.TRIGGER_MANUAL}
    )
    metadata["annotations"][names.ANNOTATION_RUN_REQUESTED_AT] = request
    spec = job_spec(plan, config, names.TRIGGER_MANUAL, run_id)
    spec["ttlSecondsAfterFinished"] = MANUAL_JOB_TTL_SECONDS
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": spec}


def drifted(desired: Any, live: Any) -> bool:
    """Whether `live` lost anything of `desired`: a field changed or removed by hand.

    Fields only in `live` (API server defaults, other managers' additions) are not drift.
    """
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return True
        return any(drifted(value, live.get(key)) for key, value in desired.items())
    if isinstance(desired, list):
        if not isinstance(live, list) or len(live) != len(desired):
            return True
        return any(drifted(d, item) for d, item in zip(desired, live, strict=True))
    return bool(desired != live)
