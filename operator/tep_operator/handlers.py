"""kopf handlers: thin wiring from Kubernetes events to the reconciler's decisions.

Handlers are registered on a registry built per operator instance (`build_registry`), so
the configuration and the API client are explicit arguments, and tests can run several
operators, one after another, in one process. What to do about an event is decided in
`tep_operator.reconciler`; here are only the kopf resources, handler signatures and the maps of what was seen
(`tep_operator.seen`).
"""

import asyncio
import concurrent.futures
import contextlib
import contextvars
import gc
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import kopf

from tep_operator import cronjob, intake, metrics, names, peering, runs
from tep_operator.client import LIST_PAGE_SIZE, Kube, is_transient
from tep_operator.config import OperatorConfig
from tep_operator.reconciler import Reconciler
from tep_operator.seen import PlanKey, Seen

TESTPLANS = (names.GROUP, names.VERSION, names.PLURAL)
MANAGED = {names.LABEL_MANAGED_BY: names.MANAGER}
LOGGER = logging.getLogger("tep_operator.resync")
HANDLER_THREADS = 16  # the threads that do the handlers' API calls


def namespaced(namespace: str | None) -> str:
    """The namespace kopf passes for an object of ours; every resource we watch is namespaced."""
    if namespace is None:
        raise ValueError("a cluster-scoped object where a namespaced one was expected")
    return namespace


def listed(event: kopf.RawEvent) -> bool:
    """Whether kopf found the object by listing (at start, or after its watch was cut and
    re-listed) rather than by a watch event: what it finds so may be what it missed."""
    return event.get("type") is None


@contextlib.contextmanager
def caught_up_by_resync(logger: kopf.Logger | logging.Logger, what: str, interval: float) -> Iterator[None]:
    """An event handler whose API calls failed for a moment (throttled, 5xx, unreachable):
    kopf does not retry event handlers, so say what the resync will do again, and go on."""
    try:
        yield
    except Exception as exc:
        if not is_transient(exc):
            raise
        logger.warning("%s: the API did not answer (%s); the resync retries within %ss", what, exc, interval)


async def resync_forever(reconciler: "Reconciler", interval: float, started: Callable[[], bool]) -> None:
    """Every `interval`: re-apply each plan's CronJob (a no-op unless it drifted), refresh
    nextRunTime, and start run requests an earlier attempt could not.

    One loop over a LIST, not a kopf timer: kopf puts a finalizer on every object that has a
    timer, and a finalizer makes deleting a plan wait for the operator to be up.
    """
    while True:
        await asyncio.sleep(interval)
        if not started():
            # kopf is still handling the plans it listed at start-up (minutes at 10,000 plans):
            # the resync would only do the same work again, in parallel
            LOGGER.info("The plans listed at start-up are still being handled; resync postponed")
            continue
        try:
            with caught_up_by_resync(LOGGER, "Resync", interval):
                await asyncio.to_thread(reconciler.resync_all)
        except Exception:
            LOGGER.exception("Resync failed; trying again in %ss", interval)


def build_registry(config: OperatorConfig, kube: Kube) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    seen = Seen()
    reconciler = Reconciler(config, kube, seen.written)
    # Plans listed at start-up, listing events of plans handled since, and when the last one
    # was: the resync waits until kopf has handled the start-up listing (or has handled no
    # listed plan for a whole period: a plan deleted meanwhile is never handled)
    listing = {"listed": 0, "handled": 0, "last": 0.0}

    def listing_handled() -> bool:
        quiet = time.monotonic() - listing["last"] > config.resync_seconds
        return listing["handled"] >= listing["listed"] or quiet

    def active_runs(key: PlanKey) -> Callable[[], list[str]]:
        """The plan's active Jobs as last seen when asked (the map changes meanwhile)."""
        return lambda: seen.active(key)

    # The handlers are coroutines: they decide in kopf's event loop what needs no API call (most
    # often an event that is our own write coming back: two of a new plan's three events) and
    # hand the rest to these threads. As synchronous handlers, kopf handed every event over to a
    # thread, and the hand-over cost more than the decision.
    threads = concurrent.futures.ThreadPoolExecutor(HANDLER_THREADS, thread_name_prefix="tep-handler")

    async def in_thread(work: Callable[[], None]) -> None:
        await asyncio.get_running_loop().run_in_executor(threads, contextvars.copy_context().run, work)

    @kopf.on.startup(id="prime", registry=registry)
    async def prime(**_: Any) -> None:
        """What every plan's decisions need, before the first handler runs."""
        while True:
            try:
                listing["listed"] = await asyncio.to_thread(seen.prime, kube, config.namespaces)
                # What is alive now lives as long as the operator (modules, kopf, the maps just
                # primed): out of the cyclic GC's reach, its full collections no longer walk it
                # again and again (the GC took 7% of the CPU of reconciling 3,000 plans).
                gc.collect()
                gc.freeze()
                return
            except Exception as exc:  # an API not answering yet: the operator is not ready
                LOGGER.warning("Listing the plans, Jobs and CronJobs failed (%s); again in 1 s", exc)
                await asyncio.sleep(1)

    def quiet_plan_event(event: Mapping[str, Any]) -> bool:
        """Our own status write coming back: nothing to reconcile."""
        return event.get("type") == "MODIFIED" and reconciler.own_status_write(event["object"])

    def cronjob_needs_nothing(body: Mapping[str, Any]) -> bool:
        """Nothing to copy to its plan and nothing to take back (most often: our own apply
        coming back)."""
        namespace, plan_name = body["metadata"]["namespace"], names.plan_of(body["metadata"])
        scheduled = (body.get("status") or {}).get("lastScheduleTime")
        return reconciler.schedule_recorded(namespace, plan_name, scheduled) and (
            seen.plan((namespace, plan_name)) is None or reconciler.own_write(body)
        )

    def quiet_cronjob_event(event: Mapping[str, Any]) -> bool:
        """Remember every CronJob as the watch reads it, in order (kopf's handler may come
        later, when a newer event has been read); then whether it needs nothing."""
        body = event["object"]
        if event.get("type") == "DELETED":
            seen.cronjob_gone(body)
            return False
        seen.cronjob_seen(body)
        return cronjob_needs_nothing(body)

    undo: dict[str, Callable[[], None]] = {}  # undone at cleanup

    @kopf.on.startup(id="skip_quiet_events", registry=registry)
    async def skip_quiet_events(settings: kopf.OperatorSettings, **_: Any) -> None:
        """Events that need nothing are dropped as the watch reads them (tep_operator.intake):
        kopf's processing of an event cost more than the decision that it needs nothing."""
        undo["skips"] = intake.skip_events(
            settings, {names.PLURAL: quiet_plan_event, "cronjobs": quiet_cronjob_event}
        )

    @kopf.on.event(*TESTPLANS, id="plan_event", registry=registry)
    async def plan_event(
        event: kopf.RawEvent,
        body: kopf.Body,
        namespace: str | None,
        name: str,
        logger: kopf.Logger,
        **_: Any,
    ) -> None:
        """Every event of a plan, including the initial listing after a restart.

        An event handler, not kopf's create/update handlers: those keep kopf's own state in
        annotations of the plan (a write per change), and `status.observedGeneration` already
        says which spec was handled. No finalizer either: owner references let Kubernetes
        delete the CronJob and Jobs, and deleting a plan never waits for the operator.
        """
        namespace = namespaced(namespace)
        key = (namespace, name)
        if event.get("type") == "DELETED":
            seen.plan_gone(key)
            metrics.forget_plan(namespace, name)
            reconciler.applied.pop((namespace, names.cronjob_name(name)), None)
            reconciler.schedules.pop((namespace, name), None)
            reconciler.reconciled.pop((namespace, name), None)
            logger.info("TestPlan deleted; Kubernetes garbage-collects its CronJob and Jobs")
            return
        if quiet_plan_event(event):
            return  # asked again: the answer to our write can come after its event was read
        await in_thread(lambda: reconcile_plan(event, body, key, logger))

    def reconcile_plan(event: kopf.RawEvent, body: kopf.Body, key: PlanKey, logger: kopf.Logger) -> None:
        seen.plan_seen(body)
        if listed(event):
            listing["handled"] += 1
            listing["last"] = time.monotonic()
        with caught_up_by_resync(logger, f"TestPlan {key[1]}", config.resync_seconds):
            reconciler.reconcile(body, active_runs(key), seen.cronjob(key), logger, listed=listed(event))

    resync: dict[str, asyncio.Task[None]] = {}

    @kopf.on.startup(id="start_resync", registry=registry)
    async def start_resync(**_: Any) -> None:
        resync["task"] = asyncio.create_task(
            resync_forever(reconciler, config.resync_seconds, listing_handled)
        )

    @kopf.on.cleanup(id="stop_resync", registry=registry)
    async def stop_resync(**_: Any) -> None:
        task = resync.pop("task", None)
        if task:
            task.cancel()
        reconciler.notifier.stop()
        threads.shutdown(wait=False)  # a handler still running finishes
        for undoing in undo.values():
            undoing()

    @kopf.on.event("batch", "v1", "cronjobs", labels=MANAGED, id="cronjob_event", registry=registry)
    async def cronjob_event(
        event: kopf.RawEvent,
        namespace: str | None,
        body: kopf.Body,
        logger: kopf.Logger,
        **_: Any,
    ) -> None:
        """Copy the CronJob's lastScheduleTime to the plan; take back a CronJob that somebody
        deleted or edited by hand."""
        namespace = namespaced(namespace)
        plan_name = names.plan_of(body.metadata)
        if event.get("type") != "DELETED" and cronjob_needs_nothing(body):
            return  # asked again: the answer to our write can come after its event was read
        scheduled = (body.get("status") or {}).get("lastScheduleTime")
        await in_thread(lambda: restore_cronjob(event, body, namespace, plan_name, scheduled, logger))

    def restore_cronjob(
        event: kopf.RawEvent,
        body: kopf.Body,
        namespace: str,
        plan_name: str,
        scheduled: str | None,
        logger: kopf.Logger,
    ) -> None:
        if scheduled and event.get("type") != "DELETED":
            reconciler.record_schedule(namespace, plan_name, scheduled)
        plan = seen.plan((namespace, plan_name))
        if plan is None or (event.get("type") != "DELETED" and reconciler.own_write(body)):
            return
        desired = cronjob.render_cronjob(plan, config)
        if event.get("type") == "DELETED":
            if not reconciler.plan_exists(plan):
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
        with caught_up_by_resync(logger, f"CronJob {body.metadata.name}", config.resync_seconds):
            reconciler.apply(desired)

    @kopf.on.event("batch", "v1", "jobs", labels=MANAGED, id="job_event", registry=registry)
    async def job_event(
        event: kopf.RawEvent,
        namespace: str | None,
        body: kopf.Body,
        logger: kopf.Logger,
        **_: Any,
    ) -> None:
        """Runs starting and finishing, also those that finished while the operator was down."""
        namespace = namespaced(namespace)
        if event.get("type") == "DELETED":
            seen.job_gone(body)
            if not runs.job_active(body):
                return  # a finished Job pruned by its CronJob or TTL: recorded when it finished
        else:
            seen.job_seen(body)
        await in_thread(lambda: track_run(event, body, namespace, logger))

    def track_run(event: kopf.RawEvent, body: kopf.Body, namespace: str, logger: kopf.Logger) -> None:
        plan_name = names.plan_of(body.metadata)
        with caught_up_by_resync(logger, f"Job {body.metadata.name}", config.resync_seconds):
            reconciler.job_changed(
                body, namespace, plan_name, active_runs((namespace, plan_name)), logger, listed=listed(event)
            )

    # pod uid -> the kinds of start failure already announced: the kubelet alternates
    # ErrImagePull and ImagePullBackOff for as long as the pod lives; each is said once
    announced: dict[str, set[str]] = {}

    @kopf.on.event("", "v1", "pods", labels=MANAGED, id="pod_event", registry=registry)
    async def pod_event(
        event: kopf.RawEvent, body: kopf.Body, namespace: str | None, logger: kopf.Logger, **_: Any
    ) -> None:
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
        plan_ref = {"metadata": {"name": names.plan_of(body.metadata), "namespace": namespaced(namespace)}}

        def announce() -> None:
            with caught_up_by_resync(logger, f"Pod {body.metadata.name}", config.resync_seconds):
                message = f"pod {body.metadata.name}: {reason}"
                kube.post_event(plan_ref, "Warning", "RunnerCannotStart", message)
                announced[uid].add(kind)

        await in_thread(announce)

    return registry


class NoDiffBase(kopf.DiffBaseStorage):
    """No "last handled state": only kopf's change handlers (on.create/update/resume) diff
    against it, and we have none (only event handlers). kopf would otherwise deep-copy every
    object of every event to build one."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        pass


class NoProgress(kopf.ProgressStorage):
    """No handler progress: kopf records it only for change handlers, retried across events;
    event handlers are called once per event. (And no deep copy per event in `clear`.)"""

    def fetch(self, *, key: Any, body: kopf.Body) -> kopf.ProgressRecord | None:
        return None

    def store(self, *, key: Any, record: kopf.ProgressRecord, body: kopf.Body, patch: kopf.Patch) -> None:
        pass

    def purge(self, *, key: Any, body: kopf.Body, patch: kopf.Patch) -> None:
        pass

    def touch(self, *, body: kopf.Body, patch: kopf.Patch, value: str | None) -> None:
        pass

    def clear(self, *, essence: kopf.BodyEssence) -> kopf.BodyEssence:
        return essence


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
    # Back-pressure on what kopf takes in: at most this many objects (per kind) in handling at
    # once, each holding its processing state (tasks, contexts, kopf's wrappers) while it waits
    # for a handler thread. Unlimited, every object of the start-up listing held all of it at
    # once: the peak RSS grew with the backlog (579 MB at 10,000 plans on a loaded machine). A
    # worker whose object has no new event leaves at once, freeing its place (kopf's default,
    # 5 s of idling, would hold the places empty; not 0, with which kopf's wait for the next
    # event fails even when one is queued, and it would spin). And no more than as many wait to start, each
    # as its raw watch event: kopf reads on only as they start (tep_operator.intake).
    settings.queueing.worker_limit = 4 * HANDLER_THREADS
    settings.queueing.idle_timeout = 0.01
    intake.install()
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.persistence.progress_storage = NoProgress()
    if config.peering:
        settings.peering.lifetime = peering.LIFETIME_SECONDS
    # Lists in pages: the initial listing of 10,000 objects is never one response in memory.
    settings.watching.chunk_size = LIST_PAGE_SIZE
