"""Back-pressure on kopf's intake (tep_operator.intake), on kopf's own scheduler."""

import asyncio
import inspect
from collections.abc import Coroutine
from typing import Any

import pytest
from kopf._cogs.aiokits import aiotasks

from tep_operator import intake


async def _spawning(
    scheduler: aiotasks.Scheduler, coros: list[Coroutine[Any, Any, Any]], spawned: list[int]
) -> None:
    """Queue the workers one after another, as kopf's watcher does for each new object."""
    for coro in coros:
        await scheduler.spawn(coro)
        spawned.append(1)


def test_a_watcher_queues_no_more_than_the_limit_of_workers_waiting_to_start() -> None:
    intake.install()

    async def scenario() -> None:
        release = asyncio.Event()
        scheduler = aiotasks.Scheduler(limit=2)
        spawned: list[int] = []
        async with asyncio.timeout(5), asyncio.TaskGroup() as watcher:
            watcher.create_task(_spawning(scheduler, [release.wait() for _ in range(10)], spawned))
            await asyncio.sleep(0.2)
            assert len(spawned) == 4  # 2 running, 2 waiting to start; the 5th object is not taken in
            release.set()
        assert len(spawned) == 10
        await scheduler.close()

    asyncio.run(scenario())


def test_workers_that_never_finish_hold_the_watcher_only_for_a_while(monkeypatch: pytest.MonkeyPatch) -> None:
    intake.install()
    monkeypatch.setattr(intake, "MAX_WAIT_SECONDS", 0.1)

    async def scenario() -> None:
        never = asyncio.Event()
        scheduler = aiotasks.Scheduler(limit=1)
        spawned: list[int] = []
        await asyncio.wait_for(_spawning(scheduler, [never.wait() for _ in range(4)], spawned), 5)
        assert len(spawned) == 4
        await scheduler.close()

    asyncio.run(scenario())


def test_a_watcher_stopped_while_it_waits_leaves_no_worker_unawaited() -> None:
    intake.install()

    async def scenario() -> None:
        never = asyncio.Event()
        scheduler = aiotasks.Scheduler(limit=1)
        coros = [never.wait() for _ in range(3)]
        watcher = asyncio.create_task(_spawning(scheduler, coros, []))
        await asyncio.sleep(0.2)
        watcher.cancel()
        with pytest.raises(asyncio.CancelledError):
            await watcher
        assert inspect.getcoroutinestate(coros[2]) == inspect.CORO_CLOSED
        await scheduler.close()

    asyncio.run(scenario())
