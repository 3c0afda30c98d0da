"""kopf's intake (tep_operator.intake): back-pressure on kopf's own scheduler, and events skipped
before kopf's own watcher processes them."""

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import kopf
import pytest
from kopf._cogs.aiokits import aiotasks
from kopf._cogs.structs import references
from kopf._core.reactor import queueing

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


def _event(kind: str, uid: str, version: str) -> dict[str, Any]:
    return {"type": kind, "object": {"metadata": {"uid": uid, "name": uid, "resourceVersion": version}}}


def test_events_a_predicate_skips_never_reach_kopfs_processing(monkeypatch: pytest.MonkeyPatch) -> None:
    """kopf's own watcher, fed a stream: what the operator's predicate skips is not processed;
    another operator (another settings object), and another kind, see every event."""
    intake.install()
    plans = references.Resource("tep.dev", "v1", "testplans")
    cronjobs = references.Resource("batch", "v1", "cronjobs")
    events = [_event("ADDED", "a", "1"), _event("MODIFIED", "a", "2"), _event("MODIFIED", "b", "3")]

    async def stream(**_: Any) -> AsyncIterator[Any]:
        for event in events:
            yield event
        await asyncio.Event().wait()  # a watch stays open

    monkeypatch.setattr(intake, "_kopf_infinite_watch", stream)
    ours, other = kopf.OperatorSettings(), kopf.OperatorSettings()
    undo = intake.skip_events(
        ours, {"testplans": lambda event: event["object"]["metadata"]["resourceVersion"] == "2"}
    )

    def processed(settings: kopf.OperatorSettings, resource: references.Resource) -> list[str]:
        seen: list[str] = []

        async def processor(*, raw_event: dict[str, Any], **_: Any) -> None:
            seen.append(raw_event["object"]["metadata"]["resourceVersion"])

        async def scenario() -> None:
            watcher = asyncio.create_task(
                queueing.watcher(namespace=None, settings=settings, resource=resource, processor=processor)
            )
            await asyncio.sleep(0.3)
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

        asyncio.run(scenario())
        return sorted(seen)

    assert processed(ours, plans) == ["1", "3"]
    assert processed(ours, cronjobs) == ["1", "2", "3"]
    assert processed(other, plans) == ["1", "2", "3"]
    undo()
    assert processed(ours, plans) == ["1", "2", "3"]
