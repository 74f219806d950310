"""``LocalBus``: the bus inside one process (asyncio), the embedded default, with RabbitBus's semantics.

Messages cross it as JSON bytes, as on the broker, so size limits, deadlines, retries, idempotency and
dead-lettering behave the same. Its dead-letter queue lives in this process's memory: ``kommandant bus
dlq`` in another process cannot see it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

from bus import processing
from bus.base import Bus, Handler, Serving, Subscription
from bus.errors import BusUnavailable, CallTimeout, NoWorker
from bus.idempotency import KeyLocks, LeasePolicy, MemoryResultStore, ResultStore
from bus.messages import (
    DEFAULT_MAX_MESSAGE_BYTES,
    DeadLetter,
    Event,
    ToolCall,
    ToolResult,
    decode_call,
    decode_result,
    encode,
    encode_result,
    preview,
)
from bus.processing import RetryPolicy
from bus.topics import topic_matches

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Delivery:
    body: bytes
    message_id: str
    correlation_id: str | None = None
    redelivered: bool = False


@dataclass(slots=True)
class _Letter:
    delivery: _Delivery
    agent: str
    reason: str
    attempts: int
    at: float = field(default_factory=time.time)


class LocalBus(Bus):
    """The in-process bus. ``result_store`` defaults to one in memory."""

    def __init__(
        self,
        *,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        retries: int = 3,
        retry_backoff: float = 0.2,
        call_timeout: float = 30.0,
        result_store: ResultStore | None = None,
        no_worker_grace: float = 2.0,
        call_lease_seconds: float = 10.0,
    ) -> None:
        self.max_message_bytes = max_message_bytes
        self.no_worker_grace = no_worker_grace
        self.policy = RetryPolicy(retries=retries, backoff=retry_backoff)
        self.call_timeout = call_timeout
        self.result_store: ResultStore = result_store if result_store is not None else MemoryResultStore()
        self.key_locks = KeyLocks()
        self.lease = LeasePolicy(seconds=call_lease_seconds)
        self._queues: dict[str, asyncio.Queue[_Delivery]] = {}
        self._pending: dict[str, asyncio.Future[ToolResult]] = {}
        self._servings: set[_LocalServing] = set()
        self._subscriptions: set[_LocalSubscription] = set()
        self._dlq: list[_Letter] = []
        self._started = False

    async def start(self) -> None:
        """Nothing to connect; marks the bus usable."""
        self._started = True

    async def close(self) -> None:
        """Drain every serving and fail calls still waiting."""
        for serving in list(self._servings):
            await serving.stop(drain=True)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(BusUnavailable("The bus was closed before the result arrived."))
        self._pending.clear()
        self._started = False

    def _queue(self, agent: str) -> asyncio.Queue[_Delivery]:
        return self._queues.setdefault(agent, asyncio.Queue())

    def _check_started(self) -> None:
        if not self._started:
            raise BusUnavailable(
                "The in-process bus is not started; use 'async with bus:' or await bus.start()."
            )

    async def call(
        self,
        agent: str,
        call: ToolCall,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> ToolResult:
        """Send ``call`` to ``agent`` and wait for the result until the deadline."""
        self._check_started()
        deadline = call.deadline if timeout is None else min(call.deadline, time.time() + timeout)
        if deadline != call.deadline:
            call = call.model_copy(update={"deadline": deadline})
        body = encode(call, max_bytes=self.max_message_bytes)
        correlation_id = uuid4().hex
        future: asyncio.Future[ToolResult] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        try:
            await self._await_server(agent, min(deadline, time.time() + self.no_worker_grace))
            self._queue(agent).put_nowait(_Delivery(body, call.call_id, correlation_id))
            async with asyncio.timeout(max(0.0, deadline - time.time())):
                return await future
        except TimeoutError as err:
            raise CallTimeout(
                f"{call.tool} on agent {agent} did not answer before its deadline (call {call.call_id})."
            ) from err
        finally:
            self._pending.pop(correlation_id, None)

    def _served(self, agent: str) -> bool:
        return any(s.agent == agent and not s.stopping for s in self._servings)

    async def _await_server(self, agent: str, until: float) -> None:
        """Return once something serves ``agent``; raise ``NoWorker`` when nothing does by ``until``."""
        while not self._served(agent):
            left = until - time.time()
            if left <= 0:
                raise NoWorker(
                    agent,
                    f"Nobody serves the {agent} agent in this process (none appeared within "
                    f"{self.no_worker_grace:g} s). `kommandant up` runs every built-in agent; with a "
                    f"broker, start one with `kommandant worker {agent}`.",
                )
            await asyncio.sleep(min(0.05, left))

    async def serve(self, agent: str, handler: Handler, *, concurrency: int = 8) -> Serving:
        """Start ``concurrency`` consumers of ``agent``'s queue."""
        self._check_started()
        serving = _LocalServing(self, agent, handler, concurrency)
        self._servings.add(serving)
        serving.begin()
        return serving

    async def publish(self, topic: str, payload: dict[str, Any]) -> None:
        """Send a copy of the event to every matching subscription."""
        body = encode(Event(topic=topic, payload=payload), max_bytes=self.max_message_bytes)
        for subscription in list(self._subscriptions):
            if topic_matches(subscription.pattern, topic):
                subscription._deliver(Event.model_validate_json(body))

    def subscribe(self, pattern: str) -> Subscription:
        """Events whose topic matches ``pattern``."""
        return _LocalSubscription(self, pattern)

    async def enqueue(self, agent: str, body: bytes, *, message_id: str | None = None) -> None:
        """Put raw bytes on ``agent``'s queue with nobody waiting for a reply."""
        self._check_started()
        self._queue(agent).put_nowait(_Delivery(body, message_id or uuid4().hex))

    async def queue_depths(self, agents: Iterable[str]) -> dict[str, int]:
        """Deliveries waiting in the in-process queues (a serving takes them off as it starts each one)."""
        return {agent: self._queues[agent].qsize() if agent in self._queues else 0 for agent in agents}

    async def dead_letters(self, limit: int | None = None) -> list[DeadLetter]:
        """The in-memory dead letters, oldest first."""
        return [self._describe(letter) for letter in self._dlq[:limit]]

    async def replay(self, ids: Iterable[str] | None = None) -> int:
        """Send dead-lettered calls to their agents again as attempt 1 with a fresh deadline."""
        wanted = None if ids is None else set(ids)
        kept: list[_Letter] = []
        replayed = 0
        for letter in self._dlq:
            call = self._call_of(letter)
            if call is None or (wanted is not None and letter.delivery.message_id not in wanted):
                kept.append(letter)
                continue
            fresh = call.model_copy(update={"attempt": 1, "deadline": time.time() + self.call_timeout})
            self._queue(letter.agent).put_nowait(_Delivery(encode(fresh), fresh.call_id))
            replayed += 1
        self._dlq = kept
        return replayed

    async def purge(self, ids: Iterable[str] | None = None) -> int:
        """Delete dead letters."""
        wanted = None if ids is None else set(ids)
        before = len(self._dlq)
        self._dlq = [x for x in self._dlq if wanted is not None and x.delivery.message_id not in wanted]
        return before - len(self._dlq)

    # -- used by servings -------------------------------------------------------------------------

    def _reply(self, delivery: _Delivery, result: ToolResult) -> None:
        if delivery.correlation_id is None:
            return
        future = self._pending.get(delivery.correlation_id)
        if future is not None and not future.done():
            # Through JSON, like the broker: the caller never shares objects with the worker.
            future.set_result(decode_result(encode_result(result, max_bytes=self.max_message_bytes)))

    def _dead_letter(self, delivery: _Delivery, agent: str, reason: str, call: ToolCall | None) -> None:
        attempts = call.attempt if call is not None else 1
        log.warning("dead-lettered %s from %s: %s", delivery.message_id, agent, reason)
        self._dlq.append(_Letter(delivery, agent, reason, attempts))

    def _call_of(self, letter: _Letter) -> ToolCall | None:
        try:
            return decode_call(letter.delivery.body, max_bytes=self.max_message_bytes)
        except ValueError:
            return None

    def _describe(self, letter: _Letter) -> DeadLetter:
        call = self._call_of(letter)
        return DeadLetter(
            id=letter.delivery.message_id,
            agent=letter.agent,
            reason=letter.reason,
            attempts=letter.attempts,
            dead_lettered_at=letter.at,
            call=call,
            body_preview=None if call is not None else preview(letter.delivery.body),
        )


class _LocalServing(Serving):
    def __init__(self, bus: LocalBus, agent: str, handler: Handler, concurrency: int) -> None:
        self.bus = bus
        self.agent = agent
        self.handler = handler
        self._slots = asyncio.Semaphore(max(1, concurrency))
        self._queue = bus._queue(agent)
        self._dispatcher: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self.stopping = False

    def begin(self) -> None:
        self._dispatcher = asyncio.create_task(self._dispatch(), name=f"local-bus-serve-{self.agent}")

    async def _dispatch(self) -> None:
        while True:
            await self._slots.acquire()
            try:
                delivery = await self._queue.get()
            except asyncio.CancelledError:
                self._slots.release()
                raise
            task = asyncio.create_task(self._handle(delivery))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    async def _handle(self, delivery: _Delivery) -> None:
        try:
            outcome = await processing.process(
                delivery.body,
                agent=self.agent,
                handler=self.handler,
                store=self.bus.result_store,
                policy=self.bus.policy,
                max_bytes=self.bus.max_message_bytes,
                locks=self.bus.key_locks,
                lease=self.bus.lease,
                message_id=delivery.message_id,
            )
            await self._carry_out(delivery, outcome)
        except asyncio.CancelledError:
            # Stopped without draining: the call goes back to the queue, as an unacked message would.
            delivery.redelivered = True
            self._queue.put_nowait(delivery)
            raise
        finally:
            self._slots.release()

    async def _carry_out(self, delivery: _Delivery, outcome: processing.Outcome) -> None:
        if isinstance(outcome, processing.Reply):
            self.bus._reply(delivery, outcome.result)
        elif isinstance(outcome, processing.Retry):
            await asyncio.sleep(outcome.delay)
            body = encode(outcome.call, max_bytes=self.bus.max_message_bytes)
            self._queue.put_nowait(_Delivery(body, delivery.message_id, delivery.correlation_id))
        else:
            self.bus._dead_letter(delivery, self.agent, outcome.reason, outcome.call)
            if outcome.reply is not None:
                self.bus._reply(delivery, outcome.reply)

    async def stop(self, drain: bool = True, grace: float | None = None) -> None:
        """Stop taking calls; finish (``drain``, within ``grace`` seconds if given) or requeue the calls
        under way. Calls still running when the grace period ends are requeued."""
        self.stopping = True
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            await asyncio.gather(self._dispatcher, return_exceptions=True)
            self._dispatcher = None
        if drain and grace is not None and self._inflight:
            await asyncio.wait(set(self._inflight), timeout=grace)
        if not drain or grace is not None:
            for task in self._inflight:
                task.cancel()
        await asyncio.gather(*self._inflight, return_exceptions=True)
        self.bus._servings.discard(self)


class _LocalSubscription(Subscription):
    def __init__(self, bus: LocalBus, pattern: str) -> None:
        super().__init__(pattern)
        self.bus = bus

    async def _open(self) -> None:
        self.bus._subscriptions.add(self)

    async def _close(self) -> None:
        self.bus._subscriptions.discard(self)
