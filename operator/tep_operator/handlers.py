"""kopf handlers: thin wiring from Kubernetes events to the reconciler's decisions.

Handlers are registered on a registry built per operator instance (`build_registry`), so
the configuration and the API client are explicit arguments, and tests can run several
operators, one after another, in one process. What to do about an event is decided in
`tep_operator.reconciler`; here are only the kopf resources, indexes and handler signatures.
"""

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import kopf

from tep_operator import cronjob, metrics, names, runs
from tep_operator.client import LIST_PAGE_SIZE, Kube
from tep_operator.config import OperatorConfig
from tep_operator.plan import Plan, PlanError, read_plan
from tep_operator.reconciler import Reconciler

TESTPLANS = (names.GROUP, names.VERSION, names.PLURAL)
MANAGED = {names.LABEL_MANAGED_BY: names.MANAGER}
LOGGER = logging.getLogger("tep_operator.resync")

PlanKey = tuple[str, str]  # (namespace, plan name)
ValidPlans = kopf.Index[PlanKey, Plan]
PlanJobs = kopf.Index[PlanKey, tuple[str, bool]]  # (Job name, still active)
PlanCronJobs = kopf.Index[PlanKey, dict[str, Any]]


def namespaced(namespace: str | None) -> str:
    """The namespace kopf passes for an object of ours; every resource we watch is namespaced."""
    if namespace is None:
        raise ValueError("a cluster-scoped object where a namespaced one was expected")
    return namespace


def listed(event: kopf.RawEvent) -> bool:
    """Whether kopf found the object by listing (at start, or after its watch was cut and
    re-listed) rather than by a watch event: what it finds so may be what it missed."""
    return event.get("type") is None


def active_runs(plan_jobs: PlanJobs, namespace: str, plan_name: str) -> Callable[[], list[str]]:
    """The plan's active Jobs as the index knows them when asked (kopf updates it in place)."""
    return lambda: [job for job, active in plan_jobs.get((namespace, plan_name), []) if active]


async def resync_forever(reconciler: "Reconciler", interval: float) -> None:
    """Every `interval`: re-apply each plan's CronJob (a no-op unless it drifted), refresh
    nextRunTime, and start run requests an earlier attempt could not.

    One loop over a LIST, not a kopf timer: kopf puts a finalizer on every object that has a
    timer, and a finalizer makes deleting a plan wait for the operator to be up.
    """
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(reconciler.resync_all)
        except Exception:
            LOGGER.exception("Resync failed; trying again in %ss", interval)


def build_registry(config: OperatorConfig, kube: Kube) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    reconciler = Reconciler(config, kube)

    @kopf.index(*TESTPLANS, id="valid_plans", registry=registry)
    def valid_plans(body: kopf.Body, **_: Any) -> dict[PlanKey, Plan]:
        """The valid plans by (namespace, name), to restore their CronJobs without a lookup."""
        try:
            plan = read_plan(body)
        except PlanError:
            return {}
        return {(plan.namespace, plan.name): plan}

    @kopf.index("batch", "v1", "jobs", labels=MANAGED, id="plan_jobs", registry=registry)
    def plan_jobs(
        body: kopf.Body, namespace: str | None, name: str, **_: Any
    ) -> dict[PlanKey, tuple[str, bool]]:
        """Each plan's Jobs and whether they still run: the source of `phase: Running`."""
        return {(namespaced(namespace), names.plan_of(body.metadata)): (name, runs.job_active(body))}

    @kopf.index("batch", "v1", "cronjobs", labels=MANAGED, id="plan_cronjobs", registry=registry)
    def plan_cronjobs(body: kopf.Body, namespace: str | None, **_: Any) -> dict[PlanKey, dict[str, Any]]:
        """Each plan's CronJob as last seen, only what says whether an apply is needed (its
        spec hash): a whole CronJob per plan is most of an operator's memory at 10,000 plans."""
        return {(namespaced(namespace), names.plan_of(body.metadata)): cronjob.applied_part(body)}

    @kopf.on.event(*TESTPLANS, id="plan_event", registry=registry)
    def plan_event(
        event: kopf.RawEvent,
        body: kopf.Body,
        namespace: str | None,
        name: str,
        logger: kopf.Logger,
        **indexes: Any,
    ) -> None:
        """Every event of a plan, including the initial listing after a restart.

        An event handler, not kopf's create/update handlers: those keep kopf's own state in
        annotations of the plan (a write per change), and `status.observedGeneration` already
        says which spec was handled. No finalizer either: owner references let Kubernetes
        delete the CronJob and Jobs, and deleting a plan never waits for the operator.
        """
        namespace = namespaced(namespace)
        plan_jobs: PlanJobs = indexes["plan_jobs"]
        plan_cronjobs: PlanCronJobs = indexes["plan_cronjobs"]
        if event.get("type") == "DELETED":
            metrics.forget_plan(namespace, name)
            reconciler.applied.pop((namespace, names.cronjob_name(name)), None)
            reconciler.schedules.pop((namespace, name), None)
            logger.info("TestPlan deleted; Kubernetes garbage-collects its CronJob and Jobs")
            return
        live = next(iter(plan_cronjobs.get((namespace, name), [])), None)
        reconciler.reconcile(
            body, active_runs(plan_jobs, namespace, name), live, logger, listed=listed(event)
        )

    resync: dict[str, asyncio.Task[None]] = {}

    @kopf.on.startup(id="start_resync", registry=registry)
    async def start_resync(**_: Any) -> None:
        resync["task"] = asyncio.create_task(resync_forever(reconciler, config.resync_seconds))

    @kopf.on.cleanup(id="stop_resync", registry=registry)
    async def stop_resync(**_: Any) -> None:
        task = resync.pop("task", None)
        if task:
            task.cancel()

    @kopf.on.event("batch", "v1", "cronjobs", labels=MANAGED, id="cronjob_event", registry=registry)
    def cronjob_event(
        event: kopf.RawEvent,
        namespace: str | None,
        body: kopf.Body,
        logger: kopf.Logger,
        **indexes: Any,
    ) -> None:
        """Copy the CronJob's lastScheduleTime to the plan; take back a CronJob that somebody
        deleted or edited by hand."""
        namespace = namespaced(namespace)
        valid_plans: ValidPlans = indexes["valid_plans"]
        plan_name = names.plan_of(body.metadata)
        scheduled = (body.get("status") or {}).get("lastScheduleTime")
        if scheduled and event.get("type") != "DELETED":
            reconciler.record_schedule(namespace, plan_name, scheduled)
        plans = list(valid_plans.get((namespace, plan_name), []))
        if not plans or (event.get("type") != "DELETED" and reconciler.own_write(body)):
            return
        desired = cronjob.render_cronjob(plans[0], config)
        if event.get("type") == "DELETED":
            if not reconciler.plan_exists(plans[0]):
                return  # deleted with its plan (garbage collection), not by hand
            logger.warning(
                "CronJob %s was deleted; restoring it from TestPlan %s", body.metadata.name, plan_name
            )
        elif cronjob.drifted(desired, body):
            logger.warning(
                "CronJob %s was edited by hand; restoring TestPlan %s's fields", body.metadata.name, plan_name
            )
        else:
            return
        reconciler.apply(desired)

    @kopf.on.event("batch", "v1", "jobs", labels=MANAGED, id="job_event", registry=registry)
    def job_event(
        event: kopf.RawEvent,
        namespace: str | None,
        body: kopf.Body,
        logger: kopf.Logger,
        **indexes: Any,
    ) -> None:
        """Runs starting and finishing, also those that finished while the operator was down."""
        namespace = namespaced(namespace)
        plan_jobs: PlanJobs = indexes["plan_jobs"]
        if event.get("type") == "DELETED" and not runs.job_active(body):
            return  # a finished Job pruned by its CronJob or TTL: recorded when it finished
        plan_name = names.plan_of(body.metadata)
        reconciler.job_changed(
            body,
            namespace,
            plan_name,
            active_runs(plan_jobs, namespace, plan_name),
            logger,
            listed=listed(event),
        )

    # pod uid -> the kinds of start failure already announced: the kubelet alternates
    # ErrImagePull and ImagePullBackOff for as long as the pod lives; each is said once
    announced: dict[str, set[str]] = {}

    @kopf.on.event("", "v1", "pods", labels=MANAGED, id="pod_event", registry=registry)
    def pod_event(event: kopf.RawEvent, body: kopf.Body, namespace: str | None, **_: Any) -> None:
        """Say at once, on the plan, why a runner cannot start (its Job fails only at the deadline)."""
        uid = body.metadata.uid or body.metadata.name
        if event.get("type") == "DELETED":
            announced.pop(uid, None)
            return
        reason = runs.pod_failure_reason(body)
        if not reason or not runs.is_start_failure(reason):
            return
        kind = reason.split(":")[0]  # ImagePullBackOff, ErrImagePull ...: one Event per kind
        if kind in announced.setdefault(uid, set()):
            return
        announced[uid].add(kind)
        plan_ref = {"metadata": {"name": names.plan_of(body.metadata), "namespace": namespaced(namespace)}}
        kube.post_event(plan_ref, "Warning", "RunnerCannotStart", f"pod {body.metadata.name}: {reason}")

    return registry


def configure(settings: kopf.OperatorSettings, config: OperatorConfig) -> None:
    """kopf settings that keep the operator alive and its footprint small."""
    # A watch the server ends every few minutes and a client timeout above it: a dead
    # connection is noticed and re-established instead of waiting forever on silence.
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 60
    settings.networking.connect_timeout = 10
    # Our Events are posted at once through the client (Kube.post_event), not kopf's queue,
    # which a shutdown drops and which only a handler's own context can reach.
    settings.posting.enabled = False
    # No CRD or namespace scanning: fewer permissions; the CRD is installed before us.
    settings.scanning.disabled = True
    # Only our own objects travel over the watch connections, not every Pod in the cluster.
    managed = f"{names.LABEL_MANAGED_BY}={names.MANAGER}"
    for resource in ("cronjobs", "jobs", "pods"):
        settings.watching.label_selectors[resource] = managed
    settings.execution.max_workers = 16
    # Lists in pages: the initial listing of 10,000 objects is never one response in memory.
    settings.watching.chunk_size = LIST_PAGE_SIZE
