"""kopf's intake of watch events: back-pressure (its reading waits while the objects already
taken in are not yet in handling), and events that need no handling dropped before kopf's
processing of them.

kopf's watcher of a kind reads its listing and its watch stream as fast as the server sends
them and, for every object without a worker, queues a worker in a scheduler that starts at most
`settings.queueing.worker_limit` of them; queueing never waits, so every listed object waits in
memory as its whole decoded body (a CronJob about 15 KB) until a worker is free. A restart on
10,000 plans held every plan and CronJob at once: 323 MB. kopf has no setting for this.

So the scheduler's `spawn`, which the watcher awaits for each new object, waits until fewer
than `worker_limit` workers wait to start: the watcher stops reading, and so fetches the next
page of a listing (or the next events of a watch) only as the handling catches up. The backlog
is then one page of the listing plus twice the limit of objects per kind, whatever the number
of plans.

Most watch events are our own writes coming back: of a new plan's three events (the plan, its
CronJob, the plan's status), two. Deciding so takes microseconds, but kopf's processing of an
event before the handler decides (a worker task per object, its idle wait, the body,
logger and cause it builds, the handler's invocation and its "succeeded" log) took a third of
the operator's CPU at 3,000 plans. So `skip_events` gives the watcher of a kind a predicate,
called for each raw event as it is read, in order: an event it says needs nothing never reaches
kopf's multiplexer. The watch stream's resourceVersion is kopf's own affair, kept below this.

This is the one place that reaches into kopf's internals (`kopf._cogs.aiokits.aiotasks`,
`kopf._cogs.clients.watching`): kopf is pinned in requirements.lock, and
tests/unit/test_intake.py runs kopf's own scheduler and watcher.
The wait is bounded (`MAX_WAIT_SECONDS`): workers that do not finish (an API that hangs) must
not hold the watcher longer than its inactivity timeout (70 s), which would cancel it; after
that the object is queued as kopf would, without back-pressure.
"""

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from typing import Any

from kopf._cogs.aiokits import aiotasks
from kopf._cogs.clients import watching
from kopf._cogs.configs import configuration

# A predicate on a raw watch event (its "type" and "object"): True when it needs no handling.
Skip = Callable[[Mapping[str, Any]], bool]

MAX_WAIT_SECONDS = 10.0

_kopf_spawn = aiotasks.Scheduler.spawn


async def _spawn_with_room(
    self: aiotasks.Scheduler, coro: Coroutine[Any, Any, Any], *, name: str | None = None
) -> None:
    limit = self._limit
    if limit is not None:

        def room() -> bool:
            return self._closed or self._pending_coros.qsize() < limit

        try:
            async with self._condition:  # notified as each worker ends (kopf's task cleaner)
                await asyncio.wait_for(self._condition.wait_for(room), MAX_WAIT_SECONDS)
        except TimeoutError:
            pass
        except BaseException:  # cancelled (the operator stopping): the worker never starts
            coro.close()
            raise
    await _kopf_spawn(self, coro, name=name)


_kopf_infinite_watch = watching.infinite_watch
# per operator (its settings object: kopf gives each operator its own), per resource plural
_skips: dict[int, dict[str, Skip]] = {}


async def _infinite_watch_skipping(
    *, settings: configuration.OperatorSettings, resource: Any, **kwargs: Any
) -> AsyncIterator[Any]:
    skip = _skips.get(id(settings), {}).get(resource.plural)
    async for raw_event in _kopf_infinite_watch(settings=settings, resource=resource, **kwargs):
        if skip is not None and isinstance(raw_event, dict) and skip(raw_event):
            continue
        yield raw_event


def skip_events(settings: configuration.OperatorSettings, skips: Mapping[str, Skip]) -> Callable[[], None]:
    """From now on, this operator's watchers of these plurals drop the events their predicate
    skips (call it before the watchers start: in a startup handler). Returns the undoing."""
    key = id(settings)
    _skips[key] = dict(skips)

    def undo() -> None:
        _skips.pop(key, None)

    return undo


def install() -> None:
    """Make every kopf scheduler with a limit wait for room before queueing, and kopf's
    watchers ask `skip_events`' predicates (idempotent)."""
    aiotasks.Scheduler.spawn = _spawn_with_room  # type: ignore[method-assign]
    watching.infinite_watch = _infinite_watch_skipping
