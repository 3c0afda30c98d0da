"""Back-pressure on kopf's intake of watch events: its reading waits while the objects already
taken in are not yet in handling.

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

This is the one place that reaches into kopf's internals (`kopf._cogs.aiokits.aiotasks`):
kopf is pinned in requirements.lock, and tests/unit/test_intake.py runs kopf's own scheduler.
The wait is bounded (`MAX_WAIT_SECONDS`): workers that do not finish (an API that hangs) must
not hold the watcher longer than its inactivity timeout (70 s), which would cancel it; after
that the object is queued as kopf would, without back-pressure.
"""

import asyncio
from collections.abc import Coroutine
from typing import Any

from kopf._cogs.aiokits import aiotasks

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


def install() -> None:
    """Make every kopf scheduler with a limit wait for room before queueing (idempotent)."""
    aiotasks.Scheduler.spawn = _spawn_with_room  # type: ignore[method-assign]
