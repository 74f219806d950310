"""The live event stream: ``GET /api/events`` as Server-Sent Events, resumable from Postgres.

Events live in the event log (``storage.events``): audit rows that are events arrive there by a trigger,
and the ``Recorder`` here adds what only the bus carries (agents up and down, bot state changes,
schedule changes). One ``EventHub`` per process reads the log every ``poll`` seconds and hands new rows
to every open stream, so 50 dashboards cost one query, not 50.

A stream that names ``Last-Event-ID`` (header, or ``last_event_id`` in the query) first gets every event
after it from Postgres, then the live ones: each event once, in id order, nothing missed within the
retention window. A stream too slow for its queue is caught up from Postgres the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from fastapi.sse import ServerSentEvent

from storage.events import EventLog, EventRecord

if TYPE_CHECKING:
    from assistant.web.panel.auth import Principal
    from bus import Bus, Subscription

log = logging.getLogger(__name__)

RETENTION = timedelta(hours=24)
"""How long events are kept to resume from."""
QUEUE_SIZE = 1000
"""Events a stream may fall behind before it is caught up from Postgres instead."""
BATCH = 500


class Listener:
    """One open stream's queue of live events; ``behind`` when it overflowed (catch up from Postgres)."""

    def __init__(self, position: int) -> None:
        self.position = position
        """The hub's newest id when this listener joined: newer events arrive in the queue."""
        self.queue: asyncio.Queue[EventRecord] = asyncio.Queue(QUEUE_SIZE)
        self.behind = False

    def drop_queue(self) -> None:
        """Empty the queue and take events again (the caller catches up from Postgres instead)."""
        while not self.queue.empty():
            self.queue.get_nowait()
        self.behind = False

    def deliver(self, event: EventRecord) -> None:
        if self.behind:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.behind = True


class EventHub:
    """Reads the event log every ``poll`` seconds and fans new events out to the open streams."""

    def __init__(self, events: EventLog, *, poll: float = 0.25) -> None:
        self.events = events
        self.poll = poll
        self.position = 0
        self._listeners: set[Listener] = set()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Begin at the newest event (older ones are read from Postgres by the streams that want them)."""
        self.position = await self.events.newest_id()
        self._task = asyncio.create_task(self._run(), name="panel-event-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def listen(self) -> Listener:
        """A new listener; remove it with ``forget``."""
        listener = Listener(self.position)
        self._listeners.add(listener)
        return listener

    def forget(self, listener: Listener) -> None:
        self._listeners.discard(listener)

    @property
    def listeners(self) -> int:
        """How many streams are open in this process."""
        return len(self._listeners)

    async def _run(self) -> None:
        while True:
            try:
                rows = await self.events.after(self.position, limit=BATCH)
            except Exception:  # a database blip must not end the stream for everyone; the next poll retries
                log.warning("reading the event log failed", exc_info=True)
                rows = []
            for row in rows:
                self.position = row.id
                for listener in list(self._listeners):
                    listener.deliver(row)
            if len(rows) < BATCH:
                await asyncio.sleep(self.poll)


def sse(event: EventRecord) -> ServerSentEvent:
    """The wire form of one event: its id, its kind as the SSE event name, the rest as JSON data."""
    data = {
        "id": event.id,
        "ts": event.ts.isoformat(),
        "kind": event.kind,
        "owner": event.owner,
        **event.data,
    }
    return ServerSentEvent(id=str(event.id), event=event.kind, data=data)


async def stream(
    hub: EventHub,
    principal: Principal,
    *,
    last_event_id: int | None,
    kinds: frozenset[str],
    ping: float,
    alive: Callable[[], bool] = lambda: True,
) -> AsyncGenerator[ServerSentEvent]:
    """The events ``principal`` may see (of ``kinds``, all when empty) after ``last_event_id`` (None: from
    now on), then live ones, with a ``ping`` comment after each quiet ``ping`` seconds."""
    listener = hub.listen()
    user = None if principal.admin else principal.user
    wanted = sorted(kinds) or None
    sent = listener.position if last_event_id is None else last_event_id
    try:
        if last_event_id is not None:
            oldest = await hub.events.oldest_id()
            if oldest and last_event_id < oldest - 1:  # pruned meanwhile: say so, then send what is kept
                yield ServerSentEvent(event="gap", data={"after": last_event_id, "oldest": oldest})
        while alive():
            if listener.behind or sent < listener.position:
                target = listener.position
                if listener.behind:  # its queue overflowed: newer events come from the queue again
                    target = hub.position
                    listener.drop_queue()
                async for event in _catch_up(hub.events, sent, target, user=user, kinds=wanted):
                    sent = event.id
                    yield sse(event)
                sent = listener.position = max(sent, target)
                continue
            try:
                event = await asyncio.wait_for(listener.queue.get(), timeout=ping)
            except TimeoutError:
                yield ServerSentEvent(comment="ping")
                continue
            if event.id <= sent:
                continue
            sent = event.id
            if (not wanted or event.kind in kinds) and event.visible_to(
                principal.user, admin=principal.admin
            ):
                yield sse(event)
    finally:
        hub.forget(listener)


async def _catch_up(
    events: EventLog, sent: int, target: int, *, user: str | None, kinds: list[str] | None
) -> AsyncIterator[EventRecord]:
    """The events after ``sent`` up to ``target`` (newer ones come through the queue), from Postgres."""
    while True:
        rows = await events.after(sent, limit=BATCH, kinds=kinds, user=user)
        for row in rows:
            if row.id > target:
                return
            sent = row.id
            yield row
        if len(rows) < BATCH:
            return


class Recorder:
    """Adds to the event log what only the bus carries: agents coming up and going down, every bot state
    change, schedule changes. Several web processes record the same bus event once (``dedupe``)."""

    def __init__(self, bus: Bus, events: EventLog, *, heartbeat_interval: float) -> None:
        self.bus, self.events = bus, events
        self.stale_after = 3 * heartbeat_interval
        self._seen: dict[str, tuple[str, float]] = {}  # instance -> (agent, loop time of its last beat)
        self._tasks: list[asyncio.Task[None]] = []
        self._subscriptions: list[Subscription] = []

    async def start(self) -> None:
        for pattern in ("agent.#", "bots.state", "schedules.changed"):
            subscription = self.bus.subscribe(pattern)
            await subscription.__aenter__()
            self._subscriptions.append(subscription)
            self._tasks.append(asyncio.create_task(self._consume(subscription), name=f"panel-{pattern}"))
        self._tasks.append(asyncio.create_task(self._sweep(), name="panel-agents-down"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for subscription in self._subscriptions:
            with contextlib.suppress(Exception):
                await subscription.__aexit__(None, None, None)
        self._tasks, self._subscriptions = [], []

    async def _consume(self, subscription: Subscription) -> None:
        async for event in subscription:
            try:
                await self.record(event.topic, event.payload)
            except Exception:
                log.warning("could not record the bus event %s", event.topic, exc_info=True)

    async def record(self, topic: str, payload: dict[str, Any]) -> None:
        """Turn one bus event into an event-log row (or none: a heartbeat of an agent known to be up)."""
        loop = asyncio.get_running_loop()
        if topic.startswith("agent.heartbeat."):
            instance, agent = str(payload.get("instance")), str(payload.get("agent"))
            known = instance in self._seen
            self._seen[instance] = (agent, loop.time())
            if not known:
                await self.events.append(
                    "agent_up", {"agent": agent, "instance": instance}, dedupe=f"agent_up:{instance}"
                )
        elif topic.startswith("agent.stopped."):
            instance = str(payload.get("instance"))
            self._seen.pop(instance, None)
            await self._down(str(payload.get("agent")), instance, "stopped")
        elif topic == "bots.state":
            data = {k: payload.get(k) for k in ("bot", "state", "reason", "restarts", "exit_code", "pid")}
            key = f"bot:{payload.get('host')}:{payload.get('bot')}:{payload.get('at')}:{payload.get('state')}"
            await self.events.append("bot_state", data, owner=payload.get("user"), dedupe=key[:300])
        elif topic == "schedules.changed":
            await self.events.append("schedule_changed", {"schedule": payload.get("name")})

    async def _down(self, agent: str, instance: str, reason: str) -> None:
        await self.events.append(
            "agent_down",
            {"agent": agent, "instance": instance, "reason": reason},
            dedupe=f"agent_down:{instance}",
        )

    async def _sweep(self) -> None:
        """Every heartbeat interval: agents silent too long are down; old events are pruned now and then."""
        loop = asyncio.get_running_loop()
        pruned_at = 0.0
        while True:
            await asyncio.sleep(self.stale_after / 3)
            now = loop.time()
            for instance, (agent, seen) in list(self._seen.items()):
                if now - seen > self.stale_after:
                    self._seen.pop(instance, None)
                    with contextlib.suppress(Exception):
                        await self._down(agent, instance, "no heartbeat")
            if now - pruned_at > 600:
                pruned_at = now
                try:
                    await self.events.prune(RETENTION)
                except Exception:
                    log.warning("pruning the event log failed", exc_info=True)
