"""kopf handlers: thin wiring from Kubernetes events to the pure core.

Handlers are registered on a registry built per operator instance (`build_registry`), so
the configuration and the API client are explicit arguments, and tests can run several
operators, one after another, in one process.

Status has several writers (plan handlers, Job events) working on one object, so every
status write goes through `update_status`: compute a patch from the freshest status and
send it with that resourceVersion, retrying on a conflict. Nothing is lost to a race.
"""

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import Any

import kopf

from tep_operator import cronjob, delivery, metrics, missed, names, notify, runs, status
from tep_operator.client import ApiException, Kube, is_status
from tep_operator.config import OperatorConfig
from tep_operator.plan import Plan, PlanError, read_plan

Logger = logging.Logger | logging.LoggerAdapter[logging.Logger]

TESTPLANS = (names.GROUP, names.VERSION, names.PLURAL)
MANAGED = {names.LABEL_MANAGED_BY: names.MANAGER}
CONFLICT_RETRIES = 8
LOGGER = logging.getLogger("tep_operator.resync")

StatusFn = Callable[[Mapping[str, Any]], dict[str, Any] | None]


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def update_status(
    kube: Kube, body: Mapping[str, Any], compute: StatusFn
) -> tuple[Mapping[str, Any], dict] | None:
    """Apply `compute(plan)` to the plan's status, optimistically; the (plan, patch) written.

    `body` is the plan as last seen; it is re-read only after a conflict.
    """
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    for _ in range(CONFLICT_RETRIES):
        patch = compute(body)
        if not patch:
            return None
        try:
            kube.patch_plan_status(
                namespace, name, patch, resource_version=body["metadata"].get("resourceVersion")
            )
            return body, patch
        except ApiException as exc:
            if not is_status(exc, 409):
                raise
        fresh = kube.find_plan(namespace, name)
        if fresh is None:
            return None  # the plan is gone; nothing to record
        body = fresh
    raise kopf.TemporaryError(f"status of {namespace}/{name} kept changing; retrying", delay=1)


def active_runs(plan_jobs: kopf.Index, namespace: str, plan_name: str) -> list[str]:
    return [job for job, active in plan_jobs.get((namespace, plan_name), []) if active]


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


class Reconciler:
    """What the handlers do, with the client and configuration of one operator."""

    def __init__(self, config: OperatorConfig, kube: Kube) -> None:
        self.config = config
        self.kube = kube
        # resourceVersion of our own last apply per CronJob: its watch event needs no drift check
        self.applied: dict[tuple[str, str], str] = {}
        # lastScheduleTime already copied per plan: a CronJob's other events need no read
        self.schedules: dict[tuple[str, str], str] = {}
        # notifications: sent in the background, never holding up a reconcile (docs/notifications.md)
        self.notifier = delivery.Notifier(
            config, kube, lambda body, compute: update_status(kube, body, compute)
        )

    def apply(self, manifest: Mapping[str, Any]) -> None:
        result = self.kube.apply_cronjob(manifest)
        metadata = result["metadata"]
        self.applied[(metadata["namespace"], metadata["name"])] = metadata.get("resourceVersion", "")

    def own_write(self, cronjob: Mapping[str, Any]) -> bool:
        metadata = cronjob["metadata"]
        return self.applied.get((metadata["namespace"], metadata["name"])) == metadata.get("resourceVersion")

    def reconcile(
        self,
        body: Mapping[str, Any],
        active: list[str],
        live: Mapping[str, Any] | None,
        logger: Logger,
        *,
        thorough: bool = False,
    ) -> None:
        """Make the CronJob match the plan and the status tell the truth.

        Level-triggered and idempotent: called for every event of the plan and by the resync,
        it writes only what differs (`live` is the CronJob as last seen, None if absent).
        `thorough` compares every rendered field, to catch hand edits that raised no event.
        """
        try:
            plan = read_plan(body)
        except PlanError as error:
            self._invalid(body, error, live is not None, logger)
            return
        manifest = cronjob.render_cronjob(plan, self.config)
        stale = live is None or (
            cronjob.drifted(manifest, live) if thorough else not cronjob.same_spec(manifest, live)
        )
        if stale:
            self.apply(manifest)
        cronjob_name = manifest["metadata"]["name"]
        new_generation = (body.get("status") or {}).get("observedGeneration") != plan.generation
        written = update_status(
            self.kube,
            body,
            lambda fresh: _if_changed(
                fresh,
                missed.schedule_patch(
                    plan,
                    fresh.get("status") or {},
                    status.scheduled_status(
                        plan, fresh.get("status") or {}, cronjob_name, now(), bool(active)
                    ),
                    now(),
                    active,
                    runs.parse_time(fresh["metadata"].get("creationTimestamp")),
                    live,
                ),
            ),
        )
        self.after_status_write(body, written, logger, plan)
        if new_generation:  # once per spec change; not on restarts, resyncs or status events
            message = f"CronJob {cronjob_name}: schedule {plan.crontab!r}, suspend={not plan.enabled}"
            self.kube.post_event(body, "Normal", "CronJobApplied", message)
            logger.info("Applied %s", message)
        self.handle_run_request(body, plan, active, logger)

    def _invalid(self, body: Mapping[str, Any], error: PlanError, kept: bool, logger: Logger) -> None:
        generation = int(body["metadata"].get("generation") or 0)
        written = update_status(
            self.kube,
            body,
            lambda fresh: _if_changed(
                fresh, status.invalid_status(error, generation, fresh.get("status") or {}, now(), kept)
            ),
        )
        if written:  # once per distinct problem, not on every event or resync
            self.kube.post_event(body, "Warning", error.reason, str(error))
            logger.warning("Invalid spec, CronJob left as it was: %s", error)

    def handle_run_request(
        self, body: Mapping[str, Any], plan: Plan, active: list[str], logger: Logger
    ) -> None:
        """Start a run for a new `tep.dev/run-requested-at` value, exactly once.

        With concurrencyPolicy Forbid and a run active, the request waits in
        `status.pendingRunRequest` and starts when the active run ends; Replace stops the
        active run first; Allow starts at once.
        """
        request = plan.run_requested_at
        old = body.get("status") or {}
        if not request or request == old.get("lastRunRequest"):
            return
        if active and plan.concurrency_policy == "Forbid":
            if old.get("pendingRunRequest") != request and update_status(
                self.kube, body, lambda fresh: _pending(fresh, request)
            ):
                waiting = f"run requested at {request} waits for {', '.join(active)} to finish"
                self.kube.post_event(body, "Normal", "RunQueued", f"{waiting} (concurrencyPolicy Forbid)")
                logger.info("Run request %s queued behind %s", request, active)
            return
        if active and plan.concurrency_policy == "Replace":
            for job in active:
                self.kube.delete_job(plan.namespace, job)
            logger.info("Stopped %s to start the requested run (concurrencyPolicy Replace)", active)
        job_name = names.manual_job_name(plan.name, request)
        manifest = cronjob.render_manual_job(plan, self.config, request, runs.run_id(job_name, now()))
        try:
            self.kube.create_job(manifest)
            created = True
        except ApiException as exc:
            if not is_status(exc, 409):
                raise
            created = False  # made before a restart or by a twin event: the same request, once
        update_status(self.kube, body, lambda fresh: _requested(fresh, request))
        if created:
            self.kube.post_event(
                body, "Normal", "RunStarted", f"Job {job_name} for the run requested at {request}"
            )
            logger.info("Started Job %s for run request %s", job_name, request)

    def resync_all(self) -> None:
        namespaces = self.config.namespaces or (None,)
        plans = [plan for ns in namespaces for plan in self.kube.list_plans(ns)]
        active: dict[tuple[str, str], list[str]] = {}
        for job in (job for ns in namespaces for job in self.kube.list_managed_jobs(ns)):
            if runs.job_active(job):
                metadata = job["metadata"]
                active.setdefault((metadata["namespace"], names.plan_of(metadata)), []).append(
                    metadata["name"]
                )
        live = {
            (c["metadata"]["namespace"], names.plan_of(c["metadata"])): c
            for ns in namespaces
            for c in self.kube.list_managed_cronjobs(ns)
        }
        for plan in plans:
            namespace, name = plan["metadata"]["namespace"], plan["metadata"]["name"]
            logger = logging.LoggerAdapter(LOGGER, {"plan": f"{namespace}/{name}"})
            try:
                self.reconcile(
                    plan,
                    active.get((namespace, name), []),
                    live.get((namespace, name)),
                    logger,
                    thorough=True,
                )
            except Exception:  # one broken plan must not stop the others' resync
                logger.exception("Resync of %s/%s failed", namespace, name)

    def record_schedule(self, namespace: str, plan_name: str, scheduled: str) -> None:
        """`status.lastScheduleTime`: when the CronJob controller last started a run."""
        key = (namespace, plan_name)
        if self.schedules.get(key) == scheduled:
            return
        body = self.kube.find_plan(namespace, plan_name)
        if body is None:
            return
        update_status(
            self.kube,
            body,
            lambda fresh: (
                None
                if (fresh.get("status") or {}).get("lastScheduleTime") == scheduled
                else {"lastScheduleTime": scheduled}
            ),
        )
        self.schedules[key] = scheduled

    def after_status_write(
        self,
        body: Mapping[str, Any],
        written: tuple[Mapping[str, Any], dict[str, Any]] | None,
        logger: Logger,
        plan: Plan | None,
    ) -> None:
        """After a status write (or none): announce a missed schedule once, refresh the
        per-plan gauges, and hand pending notifications to the background delivery."""
        seen, patch = written or (body, {})
        namespace, name = seen["metadata"]["namespace"], seen["metadata"]["name"]
        old = seen.get("status") or {}
        current = {**old, **patch}
        message = missed.newly_missed(old, patch)
        if message:
            self.kube.post_event(seen, "Warning", missed.MISSED, message)
            logger.warning("%s/%s: %s", namespace, name, message)
        targets = [(target.name, target.kind) for target in plan.notify] if plan else []
        metrics.observe_plan(namespace, name, current, missed.is_missed(current), targets)
        self.notifier.submit(namespace, name, current)

    def plan_exists(self, plan: Plan) -> bool:
        """Whether this very plan (same uid) still exists and is not being deleted."""
        body = self.kube.find_plan(plan.namespace, plan.name)
        if body is None:
            return False
        metadata = body["metadata"]
        return metadata.get("uid") == plan.uid and not metadata.get("deletionTimestamp")

    def job_changed(
        self, job: Mapping[str, Any], namespace: str, plan_name: str, active: list[str], logger: Logger
    ) -> None:
        """Track a run: Running while active; when finished, lastRun, history, Event, metrics."""
        body = self.kube.find_plan(namespace, plan_name)
        if body is None:
            return  # the plan was deleted; its Jobs go with it
        try:
            plan: Plan | None = read_plan(body)
        except PlanError:
            plan = None
        idle = status.idle_phase(plan) if plan else None
        history_limit = plan.history_limit if plan else 10
        run = None
        if runs.job_finished(job):
            pods = self.kube.list_job_pods(namespace, job["metadata"]["name"])
            run = runs.run_result(job, pods)

        def compute(fresh: Mapping[str, Any]) -> dict[str, Any] | None:
            old = fresh.get("status") or {}
            patch = (runs.record_run(old, run, history_limit, now()) if run else None) or {}
            if plan:
                patch.update(notify.run_patch(plan, old, patch, now()))
            phase = runs.phase_after(old.get("phase"), idle, len(active))
            if phase and phase != old.get("phase"):
                patch["phase"] = phase
            return patch or None

        written = update_status(self.kube, body, compute)
        self.after_status_write(body, written, logger, plan)
        if run and written and "history" in written[1]:
            kind, reason, message = runs.event_for(run)
            self.kube.post_event(written[0], kind, reason, message)
            (logger.info if kind == "Normal" else logger.warning)("%s/%s: %s", namespace, plan_name, message)
            completed = runs.parse_time(run.get("completionTime"))
            metrics.observe_run(namespace, plan_name, run, completed.timestamp() if completed else None)
        if plan and not active and run:
            self.handle_run_request(written[0] if written else body, plan, active, logger)


def _if_changed(fresh: Mapping[str, Any], patch: dict[str, Any]) -> dict[str, Any] | None:
    return patch if status.changed(fresh.get("status") or {}, patch) else None


def _pending(fresh: Mapping[str, Any], request: str) -> dict[str, Any] | None:
    old = fresh.get("status") or {}
    if request in (old.get("lastRunRequest"), old.get("pendingRunRequest")):
        return None
    return {"pendingRunRequest": request}


def _requested(fresh: Mapping[str, Any], request: str) -> dict[str, Any] | None:
    old = fresh.get("status") or {}
    if old.get("lastRunRequest") == request:
        return None
    return {"lastRunRequest": request, "pendingRunRequest": None, "phase": status.PHASE_RUNNING}


def build_registry(config: OperatorConfig, kube: Kube) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    reconciler = Reconciler(config, kube)

    @kopf.index(*TESTPLANS, id="valid_plans", registry=registry)
    def valid_plans(body: kopf.Body, **_: Any) -> dict[tuple[str, str], Plan]:
        """The valid plans by (namespace, name), to restore their CronJobs without a lookup."""
        try:
            plan = read_plan(body)
        except PlanError:
            return {}
        return {(plan.namespace, plan.name): plan}

    @kopf.index("batch", "v1", "jobs", labels=MANAGED, id="plan_jobs", registry=registry)
    def plan_jobs(body: kopf.Body, namespace: str, **_: Any) -> dict[tuple[str, str], tuple[str, bool]]:
        """Each plan's Jobs and whether they still run: the source of `phase: Running`."""
        return {(namespace, names.plan_of(body.metadata)): (body.metadata.name, runs.job_active(body))}

    @kopf.index("batch", "v1", "cronjobs", labels=MANAGED, id="plan_cronjobs", registry=registry)
    def plan_cronjobs(body: kopf.Body, namespace: str, **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
        """Each plan's CronJob as last seen: an apply is sent only when it differs."""
        return {(namespace, names.plan_of(body.metadata)): dict(body)}

    @kopf.on.event(*TESTPLANS, id="plan_event", registry=registry)
    def plan_event(
        event: Mapping[str, Any],
        body: kopf.Body,
        namespace: str,
        name: str,
        plan_jobs: kopf.Index,
        plan_cronjobs: kopf.Index,
        logger: kopf.Logger,
        **_: Any,
    ) -> None:
        """Every event of a plan, including the initial listing after a restart.

        An event handler, not kopf's create/update handlers: those keep kopf's own state in
        annotations of the plan (a write per change), and `status.observedGeneration` already
        says which spec was handled. No finalizer either: owner references let Kubernetes
        delete the CronJob and Jobs, and deleting a plan never waits for the operator.
        """
        if event.get("type") == "DELETED":
            metrics.forget_plan(namespace, name)
            reconciler.applied.pop((namespace, names.cronjob_name(name)), None)
            reconciler.schedules.pop((namespace, name), None)
            logger.info("TestPlan deleted; Kubernetes garbage-collects its CronJob and Jobs")
            return
        live = next(iter(plan_cronjobs.get((namespace, name), [])), None)
        reconciler.reconcile(body, active_runs(plan_jobs, namespace, name), live, logger)

    resync: dict[str, asyncio.Task[None]] = {}

    @kopf.on.startup(id="start_resync", registry=registry)
    async def start_resync(**_: Any) -> None:
        resync["task"] = asyncio.create_task(resync_forever(reconciler, config.resync_seconds))

    @kopf.on.cleanup(id="stop_resync", registry=registry)
    async def stop_resync(**_: Any) -> None:
        task = resync.pop("task", None)
        if task:
            task.cancel()
        reconciler.notifier.stop()

    @kopf.on.event("batch", "v1", "cronjobs", labels=MANAGED, id="cronjob_event", registry=registry)
    def cronjob_event(
        event: Mapping[str, Any],
        namespace: str,
        body: kopf.Body,
        valid_plans: kopf.Index,
        logger: kopf.Logger,
        **_: Any,
    ) -> None:
        """Copy the CronJob's lastScheduleTime to the plan; take back a CronJob that somebody
        deleted or edited by hand."""
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
        event: Mapping[str, Any],
        namespace: str,
        body: kopf.Body,
        plan_jobs: kopf.Index,
        logger: kopf.Logger,
        **_: Any,
    ) -> None:
        """Runs starting and finishing, also those that finished while the operator was down."""
        if event.get("type") == "DELETED" and not runs.job_active(body):
            return  # a finished Job pruned by its CronJob or TTL: recorded when it finished
        plan_name = names.plan_of(body.metadata)
        reconciler.job_changed(
            body, namespace, plan_name, active_runs(plan_jobs, namespace, plan_name), logger
        )

    announced: dict[str, str] = {}  # pod uid -> the start failure already announced

    @kopf.on.event("", "v1", "pods", labels=MANAGED, id="pod_event", registry=registry)
    def pod_event(event: Mapping[str, Any], body: kopf.Body, **_: Any) -> None:
        """Say at once, on the plan, why a runner cannot start (its Job fails only at the deadline)."""
        uid = body.metadata.uid or body.metadata.name
        if event.get("type") == "DELETED":
            announced.pop(uid, None)
            return
        reason = runs.pod_failure_reason(body)
        if not reason or not runs.is_start_failure(reason):
            return
        kind = reason.split(":")[0]  # ImagePullBackOff, ErrImagePull ...: one Event per kind
        if announced.get(uid) == kind:
            return
        announced[uid] = kind
        plan_ref = {"metadata": {"name": names.plan_of(body.metadata), "namespace": body.metadata.namespace}}
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
