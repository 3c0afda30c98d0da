"""What the operator has seen of its objects: each plan (when valid), each plan's Jobs and
whether they run, each plan's CronJob's spec hash. Kept by the event handlers, primed by one
paged LIST of each kind at start-up.

Our own maps instead of kopf's indexes: kopf holds back every handler until each listed
object is indexed, and its bookkeeping for that (one toggle per object, each change waking
every waiting object's worker, which re-checks every toggle) grows with the cube of the
objects listed: seconds at 1,000 plans, never done in minutes at 3,000. Primed at start-up,
the maps hold the same answers when the first handler runs.
"""

import threading
from collections.abc import Mapping
from typing import Any

from tep_operator import cronjob, names, runs
from tep_operator.client import Kube
from tep_operator.plan import Plan, PlanError, read_plan

PlanKey = tuple[str, str]  # (namespace, plan name)


def plan_key(obj: Mapping[str, Any]) -> PlanKey:
    """The plan an object of ours belongs to (a plan's own key for a plan)."""
    metadata = obj["metadata"]
    if obj.get("kind") == names.KIND:
        return metadata["namespace"], metadata["name"]
    return metadata["namespace"], names.plan_of(metadata)


class Seen:
    """Thread-safe: kopf runs the handlers that update it in several threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plans: dict[PlanKey, Plan] = {}
        self._jobs: dict[PlanKey, dict[str, bool]] = {}  # Job name -> still active
        self._cronjobs: dict[PlanKey, dict[str, Any]] = {}  # cronjob.applied_part of each

    def prime(self, kube: Kube, namespaces: tuple[str, ...]) -> int:
        """Fill the maps from a LIST of each kind (paged), before any handler runs; the
        number of plans listed."""
        listed = 0
        for namespace in namespaces or (None,):
            for plan in kube.list_plans(namespace):
                self.plan_seen(plan)
                listed += 1
            for job in kube.list_managed_jobs(namespace):
                self.job_seen(job)
            for live in kube.list_managed_cronjobs(namespace):
                self.cronjob_seen(live)
        return listed

    def written(self, obj: Mapping[str, Any]) -> None:
        """A CronJob or Job as our own write left it (the API's answer), ahead of its watch event."""
        if obj.get("kind") == "Job":
            self.job_seen(obj)
        elif obj.get("kind") == "CronJob":
            self.cronjob_seen(obj)
        else:
            raise ValueError(f"not a kind of ours: {obj.get('kind')!r}")

    # Plans

    def plan_seen(self, body: Mapping[str, Any]) -> None:
        key = plan_key(body)
        try:
            plan = read_plan(body)
        except PlanError:
            with self._lock:
                self._plans.pop(key, None)
            return
        with self._lock:
            self._plans[key] = plan

    def plan_gone(self, key: PlanKey) -> None:
        with self._lock:
            self._plans.pop(key, None)

    def plan(self, key: PlanKey) -> Plan | None:
        """The plan, if it is valid."""
        return self._plans.get(key)

    # Jobs

    def job_seen(self, job: Mapping[str, Any]) -> None:
        with self._lock:
            self._jobs.setdefault(plan_key(job), {})[job["metadata"]["name"]] = runs.job_active(job)

    def job_gone(self, job: Mapping[str, Any]) -> None:
        key = plan_key(job)
        with self._lock:
            jobs = self._jobs.get(key, {})
            jobs.pop(job["metadata"]["name"], None)
            if not jobs:
                self._jobs.pop(key, None)

    def active(self, key: PlanKey) -> list[str]:
        """The plan's Jobs that still run, as last seen."""
        with self._lock:
            return [name for name, active in self._jobs.get(key, {}).items() if active]

    # CronJobs

    def cronjob_seen(self, live: Mapping[str, Any]) -> None:
        with self._lock:
            self._cronjobs[plan_key(live)] = cronjob.applied_part(live)

    def cronjob_gone(self, live: Mapping[str, Any]) -> None:
        with self._lock:
            self._cronjobs.pop(plan_key(live), None)

    def cronjob(self, key: PlanKey) -> dict[str, Any] | None:
        """What `cronjob.same_spec` needs of the plan's CronJob; None if it has none."""
        return self._cronjobs.get(key)
