"""The reconciler: what the operator does about a plan, a CronJob, a Job, and the resync.

Decisions only, on the plans, CronJobs and Jobs as the API serves them; `handlers` wires
kopf's events to these methods and `client.Kube` carries out the writes.

Status has several writers (plan events, Job events, the resync) working on one object, so
every status write goes through `update_status`: compute a patch from the freshest status
and send it with that resourceVersion, retrying on a conflict. Nothing is lost to a race.
"""

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import kopf

from tep_operator import cronjob, delivery, metrics, missed, names, notify, peering, runs, status
from tep_operator.client import ApiException, Kube, is_status
from tep_operator.config import OperatorConfig
from tep_operator.plan import Plan, PlanError, read_plan

Logger = logging.Logger | logging.LoggerAdapter[logging.Logger]

CONFLICT_RETRIES = 8
LOGGER = logging.getLogger("tep_operator.resync")

StatusFn = Callable[[Mapping[str, Any]], dict[str, Any] | None]
# The plan's active Jobs, asked at the moment of each decision: Jobs start and end in other
# threads, and a status computed from an older answer would be written last (a status
# write that raced with another fails on the resourceVersion and is recomputed, asking again).
ActiveRuns = Callable[[], list[str]]


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Written(NamedTuple):
    """A status write: the plan as it was just before, the patch, and the plan's resourceVersion after."""

    plan: Mapping[str, Any]
    patch: dict[str, Any]
    resource_version: str


def update_status(kube: Kube, body: Mapping[str, Any], compute: StatusFn) -> Written | None:
    """Apply `compute(plan)` to the plan's status, optimistically; what was written.

    `body` is the plan as last seen; it is re-read only after a conflict.
    """
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    for _ in range(CONFLICT_RETRIES):
        patch = compute(body)
        if not patch:
            return None
        try:
            result = kube.patch_plan_status(
                namespace, name, patch, resource_version=body["metadata"].get("resourceVersion")
            )
            return Written(body, patch, result["metadata"].get("resourceVersion", ""))
        except ApiException as exc:
            if is_status(exc, 404):
                return None  # deleted since it was read; nothing to record
            if not is_status(exc, 409):
                raise
        fresh = kube.find_plan(namespace, name)
        if fresh is None:
            return None  # the plan is gone; nothing to record
        body = fresh
    raise kopf.TemporaryError(f"status of {namespace}/{name} kept changing; retrying", delay=1)


class Reconciler:
    """What the handlers do, with the client and configuration of one operator."""

    def __init__(
        self,
        config: OperatorConfig,
        kube: Kube,
        on_written: Callable[[Mapping[str, Any]], None] = lambda live: None,
    ) -> None:
        self.config = config
        self.kube = kube
        # told each CronJob and Job as our own write left it: the plan's next event (our own
        # status write, often before kopf reaches the object's watch event) then sees it, not
        # "no CronJob" or "no run active"
        self.on_written = on_written
        # resourceVersion of our own last apply per CronJob: its watch event needs no drift check
        self.applied: dict[tuple[str, str], str] = {}
        # lastScheduleTime already copied per plan: a CronJob's other events need no read
        self.schedules: dict[tuple[str, str], str] = {}
        # resourceVersion of the plan after a reconcile's own status write: its watch event
        # holds nothing that reconcile did not just handle (see `own_status_write`)
        self.reconciled: dict[tuple[str, str], str] = {}
        # notifications: sent in the background, never holding up a reconcile (docs/notifications.md)
        self.notifier = delivery.Notifier(
            config, kube, lambda body, compute: update_status(kube, body, compute)
        )

    def apply(self, manifest: Mapping[str, Any]) -> None:
        result = self.kube.apply_cronjob(manifest)
        metadata = result["metadata"]
        self.applied[(metadata["namespace"], metadata["name"])] = metadata.get("resourceVersion", "")
        self.on_written(result)

    def own_status_write(self, body: Mapping[str, Any]) -> bool:
        """Whether `body` is the plan exactly as a reconcile's status write left it: the spec,
        annotations and Jobs that reconcile was working on, plus its status. Reconciling it again
        would compute the same (what time changes, the resync refreshes; what Jobs change, their
        own events bring)."""
        return _written_as(self.reconciled, body)

    def own_write(self, cronjob: Mapping[str, Any]) -> bool:
        return _written_as(self.applied, cronjob)

    def reconcile(
        self,
        body: Mapping[str, Any],
        active: ActiveRuns,
        live: Mapping[str, Any] | None,
        logger: Logger,
        *,
        thorough: bool = False,
        listed: bool = False,
    ) -> None:
        """Make the CronJob match the plan and the status tell the truth.

        Level-triggered and idempotent: called for every event of the plan and by the resync,
        it writes only what differs (`live` is the CronJob as last seen, None if absent).
        `thorough` compares every rendered field, to catch hand edits that raised no event;
        `listed`: the plan was found by a (re-)listing, so what is done now was missed before.
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

        def scheduled(fresh: Mapping[str, Any]) -> dict[str, Any] | None:
            old = fresh.get("status") or {}
            running = active()
            patch = status.scheduled_status(plan, old, cronjob_name, now(), bool(running))
            created = runs.parse_time(fresh["metadata"].get("creationTimestamp"))
            return _if_changed(fresh, missed.schedule_patch(plan, old, patch, now(), running, created, live))

        written = update_status(self.kube, body, scheduled)
        if written:
            self.reconciled[(plan.namespace, plan.name)] = written.resource_version
        self.after_status_write(body, written, logger, plan)
        # Once per spec change: by the writer whose status write moved observedGeneration (the
        # plan as it was just before that write), not by a resync that raced an event for it.
        if written and (written[0].get("status") or {}).get("observedGeneration") != plan.generation:
            message = f"CronJob {cronjob_name}: schedule {plan.crontab!r}, suspend={not plan.enabled}"
            self.kube.post_event(body, "Normal", "CronJobApplied", message)
            logger.info("Applied %s", message)
        self.handle_run_request(body, plan, active, logger, listed=listed)

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
        self, body: Mapping[str, Any], plan: Plan, active: ActiveRuns, logger: Logger, *, listed: bool = False
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
        job_name = names.manual_job_name(plan.name, request)
        # The request's own Job may be active already (an event that overtook our status
        # write): it is not a run to wait for or to stop.
        others = [job for job in active() if job != job_name]
        if others and plan.concurrency_policy == "Forbid":
            if old.get("pendingRunRequest") != request and update_status(
                self.kube, body, lambda fresh: _pending(fresh, request)
            ):
                waiting = f"run requested at {request} waits for {', '.join(others)} to finish"
                self.kube.post_event(body, "Normal", "RunQueued", f"{waiting} (concurrencyPolicy Forbid)")
                logger.info("Run request %s queued behind %s", request, others)
            return
        if others and plan.concurrency_policy == "Replace":
            for job in others:
                self.kube.delete_job(plan.namespace, job)
            logger.info("Stopped %s to start the requested run (concurrencyPolicy Replace)", others)
        manifest = cronjob.render_manual_job(plan, self.config, request, runs.run_id(job_name, now()))
        try:
            self.on_written(self.kube.create_job(manifest))
            created = True
        except ApiException as exc:
            if not is_status(exc, 409):
                raise
            created = False  # made before a restart or by a twin event: the same request, once
        update_status(self.kube, body, lambda fresh: _requested(fresh, request))
        if listed:
            done = "started its Job" if created else "its Job was already there"
            logger.info("Recovered run request %s of %s: %s %s", request, plan.name, job_name, done)
        if created:
            self.kube.post_event(
                body, "Normal", "RunStarted", f"Job {job_name} for the run requested at {request}"
            )
            logger.info("Started Job %s for run request %s", job_name, request)

    def resync_all(self) -> None:
        if self.config.peering and not self.leading():
            return  # the standby: kopf has paused its handlers, and so does the resync
        namespaces = self.config.namespaces or (None,)
        plans = {
            (plan["metadata"]["namespace"], plan["metadata"]["name"]): plan
            for ns in namespaces
            for plan in self.kube.list_plans(ns)
        }
        active: dict[tuple[str, str], list[str]] = {}
        finished: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for job in (job for ns in namespaces for job in self.kube.list_managed_jobs(ns)):
            if runs.job_finished(job):
                metadata = job["metadata"]
                finished.setdefault((metadata["namespace"], names.plan_of(metadata)), []).append(job)
            if runs.job_active(job):
                metadata = job["metadata"]
                active.setdefault((metadata["namespace"], names.plan_of(metadata)), []).append(
                    metadata["name"]
                )
        # Each plan with its CronJob as the CronJobs' listing comes, a page at a time (10,000
        # CronJobs held at once took 150 MB), then the plans that have none
        for live in (c for ns in namespaces for c in self.kube.list_managed_cronjobs(ns)):
            plan = plans.pop((live["metadata"]["namespace"], names.plan_of(live["metadata"])), None)
            if plan is not None:
                self._resync_plan(plan, live, active, finished)
        for plan in plans.values():
            self._resync_plan(plan, None, active, finished)

    def _resync_plan(
        self,
        plan: Mapping[str, Any],
        live: Mapping[str, Any] | None,
        active: Mapping[tuple[str, str], list[str]],
        finished: Mapping[tuple[str, str], list[dict[str, Any]]],
    ) -> None:
        namespace, name = plan["metadata"]["namespace"], plan["metadata"]["name"]
        logger = logging.LoggerAdapter(LOGGER, {"plan": f"{namespace}/{name}"})
        running = _listed(active.get((namespace, name), []))
        try:
            self.reconcile(plan, running, live, logger, thorough=True)
            for job in _unrecorded(plan, finished.get((namespace, name), [])):
                self.job_changed(job, namespace, name, running, logger, listed=True)
        except Exception:  # one broken plan must not stop the others' resync
            logger.exception("Resync of %s/%s failed", namespace, name)

    def leading(self) -> bool:
        """Whether this replica is the one that acts (tep_operator.peering)."""
        namespace = self.config.namespaces[0] if self.config.namespaces else None
        peers = self.kube.peering_status(self.config.peering, namespace)
        return peering.leads(peers, self.config.identity, now())

    def schedule_recorded(self, namespace: str, plan_name: str, scheduled: str | None) -> bool:
        """Whether the plan has this lastScheduleTime of its CronJob already (or there is none)."""
        return not scheduled or self.schedules.get((namespace, plan_name)) == scheduled

    def record_schedule(self, namespace: str, plan_name: str, scheduled: str) -> None:
        """`status.lastScheduleTime`: when the CronJob controller last started a run."""
        key = (namespace, plan_name)
        if self.schedule_recorded(namespace, plan_name, scheduled):
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
        written: Written | None,
        logger: Logger,
        plan: Plan | None,
    ) -> None:
        """After a status write (or none): announce a missed schedule once, refresh the
        per-plan gauges, and hand pending notifications to the background delivery."""
        seen, patch = (written.plan, written.patch) if written else (body, {})
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
        self,
        job: Mapping[str, Any],
        namespace: str,
        plan_name: str,
        active: ActiveRuns,
        logger: Logger,
        *,
        listed: bool = False,
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
            pods = self.kube.list_job_pods(job)
            run = runs.run_result(job, pods)

        def compute(fresh: Mapping[str, Any]) -> dict[str, Any] | None:
            old = fresh.get("status") or {}
            patch = (runs.record_run(old, run, history_limit, now()) if run else None) or {}
            if plan:
                patch.update(notify.run_patch(plan, old, patch, now()))
            phase = runs.phase_after(old.get("phase"), idle, len(active()))
            if phase and phase != old.get("phase"):
                patch["phase"] = phase
            return patch or None

        written = update_status(self.kube, body, compute)
        self.after_status_write(body, written, logger, plan)
        if run and written and "history" in written[1]:
            kind, reason, message = runs.event_for(run)
            self.kube.post_event(written[0], kind, reason, message)
            (logger.info if kind == "Normal" else logger.warning)("%s/%s: %s", namespace, plan_name, message)
            if listed:
                logger.info(
                    "Recovered run %s of %s/%s: it ended unrecorded", run["name"], namespace, plan_name
                )
            completed = runs.parse_time(run.get("completionTime"))
            metrics.observe_run(namespace, plan_name, run, completed.timestamp() if completed else None)
        if plan and run and not active():
            self.handle_run_request(written[0] if written else body, plan, active, logger)


def _unrecorded(plan: Mapping[str, Any], jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The finished Jobs the plan's status does not have (an event lost to an API error),
    except those older than a full history's oldest entry: recorded once, then pushed out."""
    if not jobs:
        return []
    try:
        limit = read_plan(plan).history_limit
    except PlanError:
        return []
    old = plan.get("status") or {}
    history = old.get("history") or []
    known = {h.get("name") for h in history} | {(old.get("lastRun") or {}).get("name")}
    oldest = min(((h.get("startTime") or "") for h in history), default="") if len(history) >= limit else ""
    return [
        job
        for job in jobs
        if job["metadata"]["name"] not in known
        and ((job.get("status") or {}).get("startTime") or "") >= oldest
    ]


def _listed(jobs: list[str]) -> ActiveRuns:
    """The active Jobs as one LIST found them (the resync's answer)."""
    return lambda: jobs


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


def _written_as(versions: Mapping[tuple[str, str], str], obj: Mapping[str, Any]) -> bool:
    """Whether `obj` is still at the resourceVersion our own last write of it gave it."""
    metadata = obj["metadata"]
    version = versions.get((metadata["namespace"], metadata["name"]))
    return version is not None and version == metadata.get("resourceVersion")
