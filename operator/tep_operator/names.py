"""Names, labels and annotations of the objects the operator creates.

Kubernetes caps CronJob names at 52 characters (the CronJob controller appends an
11-character suffix for its Jobs) and label values at 63. Longer plan names are cut and
given a stable hash suffix, so the same plan always maps to the same short name and two
long names that share a prefix do not collide.
"""

import hashlib
from collections.abc import Mapping
from typing import Any

GROUP = "tep.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "TestPlan"
PLURAL = "testplans"

MAX_CRONJOB_NAME = 52
MAX_LABEL_VALUE = 63
HASH_LENGTH = 8

LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "tep-operator"
LABEL_PLAN = "tep.dev/plan"
LABEL_TRIGGER = "tep.dev/trigger"
ANNOTATION_PLAN_NAME = "tep.dev/plan-name"
ANNOTATION_RUN_REQUESTED_AT = "tep.dev/run-requested-at"
# Set by the API server on every Job's pod template, hence on its pods, by every Kubernetes
# version. The `batch.kubernetes.io/` twins of these two exist only from 1.27 on.
LABEL_JOB_NAME = "job-name"
LABEL_CONTROLLER_UID = "controller-uid"

TRIGGER_SCHEDULE = "schedule"
TRIGGER_MANUAL = "manual"


def stable_hash(text: str, length: int = HASH_LENGTH) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def shorten(name: str, limit: int) -> str:
    """`name` itself if it fits, else a prefix of it plus `-<hash of the full name>`."""
    if len(name) <= limit:
        return name
    # Label values and DNS names must end with an alphanumeric character; the hash does.
    prefix = name[: limit - HASH_LENGTH - 1].rstrip("-._")
    return f"{prefix}-{stable_hash(name)}"


def cronjob_name(plan_name: str) -> str:
    return shorten(plan_name, MAX_CRONJOB_NAME)


def plan_label(plan_name: str) -> str:
    return shorten(plan_name, MAX_LABEL_VALUE)


def labels(plan_name: str) -> dict[str, str]:
    """Labels every object of a plan carries: how the operator finds them again."""
    return {LABEL_MANAGED_BY: MANAGER, LABEL_PLAN: plan_label(plan_name)}


def annotations(plan_name: str) -> dict[str, str]:
    return {ANNOTATION_PLAN_NAME: plan_name}


def plan_of(metadata: Mapping[str, Any]) -> str:
    """The full name of the plan an object of ours belongs to (from its annotation)."""
    return str((metadata.get("annotations") or {}).get(ANNOTATION_PLAN_NAME, ""))


def manual_job_name(plan_name: str, request: str) -> str:
    """The Job of a run-now request: derived from the request value, so the same value
    maps to the same Job name and a second create of it is refused by the API server."""
    return f"{cronjob_name(plan_name)}-m{stable_hash(request)}"
