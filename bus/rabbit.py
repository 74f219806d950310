"""``RabbitBus``: the bus over RabbitMQ (aio-pika), for agents in more than one process or machine.

Topology, declared idempotently (``<p>`` is the prefix, ``kommandant`` by default):

- ``<p>.tasks``  direct exchange; one durable queue ``<p>.tasks.<agent>`` per agent, bound by agent name,
  dead-lettering to ``<p>.dlx``;
- ``<p>.events`` topic exchange for heartbeats, tool lifecycle and approvals; each subscription is an
  exclusive queue ``<p>.events.<uuid>`` bound with its pattern;
- ``<p>.dlx``    fanout exchange -> durable queue ``<p>.dlq.all``.

Calls are persistent, confirmed, carry ``correlation_id`` and reply to ``amq.rabbitmq.reply-to`` (direct
reply-to: no queue per call) and expire on the broker at their deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
    DeliveryMode,
    ExchangeType,
)
from pamqp import commands as spec
from yarl import URL

from bus import processing
from bus.base import Bus, Handler, Serving, Subscription
from bus.errors import BusError, BusUnavailable, CallTimeout, NoWorker
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

log = logging.getLogger(__name__)

DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
JSON = "application/json"
H_REASON = "x-kommandant-reason"
H_AGENT = "x-kommandant-agent"
H_ATTEMPTS = "x-kommandant-attempts"
H_DEAD_AT = "x-kommandant-dead-at"

# What a lost connection or channel looks like while publishing or acknowledging.
_LINK_ERRORS: tuple[type[BaseException], ...] = (
    aiormq.exceptions.AMQPError,
    aiormq.exceptions.ChannelInvalidStateError,
    ConnectionError,
    RuntimeError,
)


@dataclass(frozen=True, slots=True)
class Topology:
    """Exchange and queue names under one prefix."""

    prefix: str = "kommandant"

    @property
    def tasks(self) -> str:
        return f"{self.prefix}.tasks"

    @property
    def events(self) -> str:
        return f"{self.prefix}.events"

    @property
    def dlx(self) -> str:
        return f"{self.prefix}.dlx"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}.dlq.all"

    def agent_queue(self, agent: str) -> str:
        return f"{self.prefix}.tasks.{agent}"

    def agent_of_queue(self, queue: str) -> str | None:
        head = f"{self.prefix}.tasks."
        return queue[len(head) :] if queue.startswith(head) else None

    def queue_arguments(self) -> dict[str, Any]:
        return {"x-dead-letter-exchange": self.dlx}


@dataclass(slots=True)
class _Pending:
    future: asyncio.Future[ToolResult]
    call: ToolCall
    agent: str
    sent: bool = False
    awaiting_worker: bool = False
    lost: bool = False
    """The connection went down after the call was sent; it is sent again once the connection is back."""


class _LinkLost(BusUnavailable):
    """The connection to the broker went down while a call was sent or under way."""


def safe_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parsed = URL(url)
    return str(parsed.with_password("******")) if parsed.password else url


def _current_task_cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class RabbitBus(Bus):
    """The bus over RabbitMQ. ``result_store`` should be shared by every worker (Postgres); without one,
    each process remembers only its own results."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "kommandant",
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        retries: int = 3,
        retry_backoff: float = 0.2,
        call_timeout: float = 30.0,
        result_store: ResultStore | None = None,
        reconnect_interval: float = 1.0,
        connect_timeout: float = 10.0,
        name: str = "kommandant",
        no_worker_grace: float = 2.0,
        call_lease_seconds: float = 10.0,
    ) -> None:
        self.url = url
        self.no_worker_grace = no_worker_grace
        self.topology = Topology(prefix)
        self.max_message_bytes = max_message_bytes
        self.policy = RetryPolicy(retries=retries, backoff=retry_backoff)
        self.call_timeout = call_timeout
        self.result_store: ResultStore = result_store if result_store is not None else MemoryResultStore()
        self.key_locks = KeyLocks()
        self.lease = LeasePolicy(seconds=call_lease_seconds)
        self.reconnect_interval = reconnect_interval
        self.connect_timeout = connect_timeout
        self.connection_name = f"{name}:{prefix}:{os.getpid()}:{uuid4().hex[:6]}"
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._tasks_x: AbstractExchange | None = None
        self._events_x: AbstractExchange | None = None
        self._agents: dict[str, asyncio.Task[AbstractQueue]] = {}
        self.known_agents: set[str] = set()
        self._pending: dict[str, _Pending] = {}
        self._servings: set[_RabbitServing] = set()
        self._subscriptions: set[_RabbitSubscription] = set()
        # agent -> until when a consumer was last seen on its queue (a positive answer, cached briefly)
        self._served_until: dict[str, float] = {}
        self.served_ttl = 2.0
        """Seconds a seen consumer counts as still there: most calls skip the check; a call right after
        the last worker died waits its deadline, as every call did before this check existed."""

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (robustly), declare the topology and start listening for replies."""
        if self._connection is not None:
            return
        try:
            self._connection = await aio_pika.connect_robust(
                self.url,
                timeout=self.connect_timeout,
                reconnect_interval=self.reconnect_interval,
                client_properties={"connection_name": self.connection_name},
            )
        except (OSError, aiormq.exceptions.AMQPError, TimeoutError) as err:
            raise BusUnavailable(f"Cannot reach the message broker at {safe_url(self.url)}: {err}") from err
        channel = await self._connection.channel(publisher_confirms=True)
        self._channel = channel
        self._tasks_x, self._events_x = await declare_topology(channel, self.topology)
        replies = await channel.declare_queue(DIRECT_REPLY_TO, passive=True)
        await replies.consume(self._on_reply, no_ack=True)
        channel.close_callbacks.add(self._on_channel_lost)

    async def close(self) -> None:
        """Drain every serving, fail calls still waiting, disconnect."""
        for serving in list(self._servings):
            await serving.stop(drain=True)
        for subscription in list(self._subscriptions):
            await subscription._close()
        self._fail_pending("The bus was closed before the result arrived.", only_sent=False)
        if self._connection is not None:
            with contextlib.suppress(*_LINK_ERRORS, TimeoutError):
                async with asyncio.timeout(5):
                    await self._connection.close()
        self._connection = self._channel = None
        self._agents.clear()

    def _ready_channel(self) -> AbstractRobustChannel:
        if self._channel is None:
            raise BusUnavailable(
                "The RabbitMQ bus is not started; use 'async with bus:' or await bus.start()."
            )
        return self._channel

    async def _wait_ready(self, seconds: float, what: str) -> AbstractRobustChannel:
        channel = self._ready_channel()
        try:
            async with asyncio.timeout(max(seconds, 0.0)):
                await channel.ready()
        except TimeoutError as err:
            raise BusUnavailable(
                f"The message broker at {safe_url(self.url)} is not reachable; {what} was not sent."
            ) from err
        return channel

    async def declare_agent(self, agent: str, channel: AbstractChannel | None = None) -> AbstractQueue:
        """Declare ``<p>.tasks.<agent>`` bound to the tasks exchange (once per agent and channel)."""
        self.known_agents.add(agent)
        if channel is not None:
            return await _declare_agent_queue(channel, self.topology, agent)
        task = self._agents.get(agent)
        if task is None or (task.done() and task.exception() is not None):
            task = asyncio.ensure_future(_declare_agent_queue(self._ready_channel(), self.topology, agent))
            self._agents[agent] = task
        return await asyncio.shield(task)

    # -- calls ------------------------------------------------------------------------------------

    async def call(
        self,
        agent: str,
        call: ToolCall,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> ToolResult:
        """Send ``call`` to ``agent``'s queue and wait for its result until the deadline."""
        deadline = call.deadline if timeout is None else min(call.deadline, time.time() + timeout)
        if deadline != call.deadline:
            call = call.model_copy(update={"deadline": deadline})
        body = encode(call, max_bytes=self.max_message_bytes)
        channel = self._ready_channel()
        correlation_id = uuid4().hex
        pending = _Pending(asyncio.get_running_loop().create_future(), call, agent)
        self._pending[correlation_id] = pending
        try:
            # One timer for the whole call: it is cheaper than one per step, and says which step ran late.
            async with asyncio.timeout(max(0.0, deadline - time.time())):
                if channel.is_closed or not self._agent_declared(agent):
                    await channel.ready()
                    await self.declare_agent(agent)
                if self._served_until.get(agent, 0.0) < time.monotonic():
                    await self._await_consumer(agent, pending)
                while True:
                    try:
                        await self._send_call(agent, call, body, correlation_id, pending)
                        return await pending.future
                    except _LinkLost:
                        # Send it again under the same idempotency key once the robust connection is back:
                        # a worker answers a second delivery with the stored result, or waits for the
                        # first one's lease, so the call still acts once.
                        pending.future = asyncio.get_running_loop().create_future()
                        pending.sent, pending.lost = False, True
                        await asyncio.sleep(0.05)  # the channel may still look ready: never a busy loop
                        await self._ready_channel().ready()
                        log.info("sending %s to %s again after the connection came back", call.call_id, agent)
        except TimeoutError as err:
            if pending.awaiting_worker:
                raise self._no_worker(agent) from err
            if pending.lost:
                raise self._lost(call, agent, "while it was under way and did not come back in time") from err
            if not pending.sent:
                raise BusUnavailable(
                    f"The message broker at {safe_url(self.url)} was not reachable before the deadline; "
                    f"the call of {call.tool} on agent {agent} was not sent."
                ) from err
            raise CallTimeout(
                f"{call.tool} on agent {agent} did not answer before its deadline (call {call.call_id})."
            ) from err
        finally:
            self._pending.pop(correlation_id, None)

    async def _await_consumer(self, agent: str, pending: _Pending) -> None:
        """Return once ``agent``'s queue has a consumer; raise ``NoWorker`` after the grace period."""
        give_up = time.monotonic() + self.no_worker_grace
        pending.awaiting_worker = True
        while True:
            try:
                consumers = await self._consumer_count(agent)
            except _LINK_ERRORS:
                # The broker is what is missing: wait for the robust channel (the call's deadline bounds
                # it, and then says the broker was unreachable), then give workers their grace again.
                pending.awaiting_worker = False
                await self._ready_channel().ready()
                await asyncio.sleep(0.05)  # never a busy loop, whatever the error was
                give_up, pending.awaiting_worker = time.monotonic() + self.no_worker_grace, True
                continue
            if consumers:
                break
            if time.monotonic() >= give_up:
                raise self._no_worker(agent)
            await asyncio.sleep(min(0.1, max(give_up - time.monotonic(), 0.0)))
        pending.awaiting_worker = False
        log.debug("agent %s has %d consumer(s)", agent, consumers)
        self._served_until[agent] = time.monotonic() + self.served_ttl

    async def _consumer_count(self, agent: str) -> int:
        # Declaring again with the same arguments is harmless and, unlike a passive declare, never closes
        # the channel; the answer carries the queue's consumer count.
        queue = await self._ready_channel().declare_queue(
            self.topology.agent_queue(agent),
            durable=True,
            arguments=self.topology.queue_arguments(),
            robust=False,
        )
        result = queue.declaration_result
        return int(result.consumer_count or 0) if result is not None else 0

    async def queue_depths(self, agents: Iterable[str]) -> dict[str, int]:
        """The broker's ready-message count of each agent queue, from a declare with the queue's own
        arguments on this bus's channel (as ``_consumer_count`` does: it never closes the channel, and it
        leaves an empty durable queue behind for an agent that had none, as its first call would)."""
        channel = self._ready_channel()
        depths: dict[str, int] = {}
        for agent in agents:
            self.known_agents.add(agent)  # its queue exists now, so whoever deletes the topology deletes it
            try:
                queue = await channel.declare_queue(
                    self.topology.agent_queue(agent),
                    durable=True,
                    arguments=self.topology.queue_arguments(),
                    robust=False,
                )
            except _LINK_ERRORS as err:
                raise BusUnavailable(
                    f"The broker did not say how many calls wait for {agent}: {err}"
                ) from err
            result = queue.declaration_result
            depths[agent] = int(result.message_count or 0) if result is not None else 0
        return depths

    def _no_worker(self, agent: str) -> NoWorker:
        return NoWorker(
            agent,
            f"No worker serves the {agent} agent (none appeared on the broker within "
            f"{self.no_worker_grace:g} s), so the call was not sent. Start one with "
            f"`kommandant worker {agent}`.",
        )

    def _agent_declared(self, agent: str) -> bool:
        declared = self._agents.get(agent)
        return declared is not None and declared.done() and declared.exception() is None

    async def _send_call(
        self, agent: str, call: ToolCall, body: bytes, correlation_id: str, pending: _Pending
    ) -> None:
        message = aio_pika.Message(
            body,
            content_type=JSON,
            delivery_mode=DeliveryMode.PERSISTENT,
            correlation_id=correlation_id,
            reply_to=DIRECT_REPLY_TO,
            message_id=call.call_id,
            expiration=max(call.remaining(), 0.001),
        )
        assert self._tasks_x is not None
        pending.sent = True
        try:
            confirmation = await self._tasks_x.publish(message, routing_key=agent)
        except asyncio.CancelledError:
            if _current_task_cancelling():
                raise
            raise self._lost(call, agent, "while it was being sent") from None
        except _LINK_ERRORS as err:
            raise self._lost(call, agent, "while it was being sent") from err
        if not isinstance(confirmation, spec.Basic.Ack):
            raise BusUnavailable(f"The broker did not accept the call of {call.tool} for agent {agent}.")

    def _lost(self, call: ToolCall, agent: str, when: str) -> BusUnavailable:
        return _LinkLost(
            f"The connection to the message broker was lost {when}: {call.tool} on agent {agent} may or "
            f"may not have run. Call again with idempotency key {call.idempotency_key!r} to get its "
            "result without running it twice."
        )

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        pending = self._pending.get(message.correlation_id or "")
        if pending is None or pending.future.done():
            return  # an answer for a caller that gave up, or a second answer after a redelivery
        try:
            pending.future.set_result(decode_result(message.body))
        except BusError as err:
            pending.future.set_exception(
                BusError(
                    f"The answer from agent {pending.agent} to {pending.call.tool} was unreadable: {err}"
                )
            )

    def _on_channel_lost(self, *_: Any) -> None:
        # Direct reply-to is bound to the channel: answers to calls sent before the loss cannot arrive.
        self._fail_pending(None, only_sent=True)

    def _fail_pending(self, message: str | None, *, only_sent: bool) -> None:
        for pending in list(self._pending.values()):
            if pending.future.done() or (only_sent and not pending.sent):
                continue
            error = (
                BusUnavailable(message)
                if message
                else self._lost(pending.call, pending.agent, "while waiting for the result")
            )
            pending.future.set_exception(error)

    # -- serving ----------------------------------------------------------------------------------

    async def serve(self, agent: str, handler: Handler, *, concurrency: int = 8) -> Serving:
        """Consume ``agent``'s queue with prefetch ``concurrency``; servings in any process share it."""
        if self._connection is None:
            raise BusUnavailable(
                "The RabbitMQ bus is not started; use 'async with bus:' or await bus.start()."
            )
        serving = _RabbitServing(self, agent, handler, concurrency)
        await serving.begin(self._connection)
        self._servings.add(serving)
        return serving

    # -- events -----------------------------------------------------------------------------------

    async def publish(self, topic: str, payload: dict[str, Any]) -> None:
        """Publish an event to the topic exchange (confirmed; dropped when nobody subscribes)."""
        body = encode(Event(topic=topic, payload=payload), max_bytes=self.max_message_bytes)
        await self._wait_ready(self.call_timeout, f"the event {topic}")
        assert self._events_x is not None
        message = aio_pika.Message(body, content_type=JSON, delivery_mode=DeliveryMode.NOT_PERSISTENT)
        try:
            await self._events_x.publish(
                message, routing_key=topic, mandatory=False, timeout=self.call_timeout
            )
        except _LINK_ERRORS as err:
            raise BusUnavailable(f"The event {topic} could not be published: {err}") from err

    def subscribe(self, pattern: str) -> Subscription:
        """An exclusive queue bound to the events exchange with ``pattern``."""
        return _RabbitSubscription(self, pattern)

    # -- raw messages and dead letters --------------------------------------------------------------

    async def enqueue(self, agent: str, body: bytes, *, message_id: str | None = None) -> None:
        """Publish raw bytes to ``agent``'s queue, persistent and confirmed, with no reply address."""
        await self._wait_ready(self.call_timeout, "the message")
        await self.declare_agent(agent)
        assert self._tasks_x is not None
        message = aio_pika.Message(
            body,
            content_type=JSON,
            delivery_mode=DeliveryMode.PERSISTENT,
            message_id=message_id or uuid4().hex,
        )
        try:
            await self._tasks_x.publish(message, routing_key=agent, timeout=self.call_timeout)
        except _LINK_ERRORS as err:
            raise BusUnavailable(f"The message for agent {agent} could not be published: {err}") from err

    async def dead_letters(self, limit: int | None = None) -> list[DeadLetter]:
        """Read the dead-letter queue without removing anything (the messages are requeued)."""
        letters: list[DeadLetter] = []
        async with self._dlq_messages(limit) as messages:
            letters.extend(self._describe(m) for m in messages)
        return letters

    async def replay(self, ids: Iterable[str] | None = None) -> int:
        """Republish dead-lettered calls to their agents as attempt 1 with a fresh deadline."""
        wanted = None if ids is None else set(ids)
        replayed = 0
        async with self._dlq_messages(None) as messages:
            for message in messages:
                letter = self._describe(message)
                if letter.call is None or letter.agent is None:
                    continue
                if wanted is not None and letter.id not in wanted:
                    continue
                fresh = letter.call.model_copy(
                    update={"attempt": 1, "deadline": time.time() + self.call_timeout}
                )
                await self.enqueue(letter.agent, encode(fresh), message_id=fresh.call_id)
                await message.ack()
                replayed += 1
        return replayed

    async def purge(self, ids: Iterable[str] | None = None) -> int:
        """Delete dead letters: all of them, or those with these ids."""
        wanted = None if ids is None else set(ids)
        purged = 0
        async with self._dlq_messages(None) as messages:
            for message in messages:
                if wanted is None or self._describe(message).id in wanted:
                    await message.ack()
                    purged += 1
        return purged

    @contextlib.asynccontextmanager
    async def _dlq_messages(self, limit: int | None) -> AsyncIterator[list[AbstractIncomingMessage]]:
        """Fetch DLQ messages unacknowledged; those not acked go back to the queue when the channel closes."""
        if self._connection is None:
            raise BusUnavailable(
                "The RabbitMQ bus is not started; use 'async with bus:' or await bus.start()."
            )
        channel = await self._connection.channel(publisher_confirms=False)
        try:
            queue = await channel.declare_queue(self.topology.dlq, passive=True)
            messages: list[AbstractIncomingMessage] = []
            while limit is None or len(messages) < limit:
                message = await queue.get(no_ack=False, fail=False)
                if message is None:
                    break
                messages.append(message)
            yield messages
        finally:
            await channel.close()

    def _describe(self, message: AbstractIncomingMessage) -> DeadLetter:
        headers = message.headers or {}
        deaths = headers.get("x-death") or []
        death = deaths[0] if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict) else {}
        queue = str(death.get("queue", "")) if death else ""
        agent = _text(headers.get(H_AGENT)) or self.topology.agent_of_queue(queue) or None
        reason = _text(headers.get(H_REASON)) or (str(death.get("reason", "")) if death else "") or "unknown"
        try:
            call: ToolCall | None = decode_call(message.body, max_bytes=self.max_message_bytes)
        except BusError:
            call = None
        dead_at = headers.get(H_DEAD_AT)
        attempts = headers.get(H_ATTEMPTS)
        return DeadLetter(
            id=message.message_id or (call.call_id if call else "") or uuid4().hex,
            agent=agent,
            reason=reason,
            attempts=int(attempts) if isinstance(attempts, int) else (call.attempt if call else 1),
            dead_lettered_at=float(dead_at) if isinstance(dead_at, int | float) else None,
            call=call,
            body_preview=None if call is not None else preview(message.body),
        )


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value if isinstance(value, str) else None


async def declare_topology(
    channel: AbstractChannel, topology: Topology
) -> tuple[AbstractExchange, AbstractExchange]:
    """Declare the exchanges and the dead-letter queue (idempotent); return (tasks, events) exchanges."""
    tasks = await channel.declare_exchange(topology.tasks, ExchangeType.DIRECT, durable=True)
    events = await channel.declare_exchange(topology.events, ExchangeType.TOPIC, durable=True)
    dlx = await channel.declare_exchange(topology.dlx, ExchangeType.FANOUT, durable=True)
    dlq = await channel.declare_queue(topology.dlq, durable=True)
    await dlq.bind(dlx, routing_key="")
    return tasks, events


async def _declare_agent_queue(channel: AbstractChannel, topology: Topology, agent: str) -> AbstractQueue:
    queue = await channel.declare_queue(
        topology.agent_queue(agent), durable=True, arguments=topology.queue_arguments()
    )
    await queue.bind(topology.tasks, routing_key=agent)
    return queue


class _RabbitServing(Serving):
    def __init__(self, bus: RabbitBus, agent: str, handler: Handler, concurrency: int) -> None:
        self.bus = bus
        self.agent = agent
        self.handler = handler
        self.concurrency = max(1, concurrency)
        self._channel: AbstractRobustChannel | None = None
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None
        self._tasks_x: AbstractExchange | None = None
        self._dlx: AbstractExchange | None = None
        self._inflight: set[asyncio.Task[Any]] = set()
        self._stopping = False

    async def begin(self, connection: AbstractRobustConnection) -> None:
        channel = await connection.channel(publisher_confirms=True)
        self._channel = channel
        await channel.set_qos(prefetch_count=self.concurrency)
        topology = self.bus.topology
        self._tasks_x = await channel.declare_exchange(topology.tasks, ExchangeType.DIRECT, durable=True)
        self._dlx = await channel.declare_exchange(topology.dlx, ExchangeType.FANOUT, durable=True)
        self._queue = await self.bus.declare_agent(self.agent, channel)
        self._tag = await self._queue.consume(self._on_message)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        # aiormq cancels consumer callbacks when the channel closes. The work runs in its own task so a
        # connection blip never interrupts a handler halfway: it finishes and stores its result, and the
        # redelivery (which waits on the key's lock) answers with that stored result.
        work = asyncio.create_task(self._handle(message), name=f"bus-{self.agent}-{message.message_id}")
        self._inflight.add(work)
        work.add_done_callback(self._inflight.discard)
        await asyncio.shield(work)

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        try:
            outcome = await processing.process(
                message.body,
                agent=self.agent,
                handler=self.handler,
                store=self.bus.result_store,
                policy=self.bus.policy,
                max_bytes=self.bus.max_message_bytes,
                locks=self.bus.key_locks,
                lease=self.bus.lease,
                message_id=message.message_id,
            )
            await self._carry_out(message, outcome)
            await message.ack()
        except _LINK_ERRORS as err:
            # Not acknowledged: the broker redelivers it, and the stored result keeps that harmless.
            log.warning(
                "could not finish %s on %s (%s); it will be redelivered", message.message_id, self.agent, err
            )

    async def _carry_out(self, message: AbstractIncomingMessage, outcome: processing.Outcome) -> None:
        if isinstance(outcome, processing.Reply):
            await self._reply(message, outcome.result)
        elif isinstance(outcome, processing.Retry):
            await asyncio.sleep(outcome.delay)
            await self._send_again(message, outcome.call)
        else:
            await self._dead_letter(message, outcome)
            if outcome.reply is not None:
                await self._reply(message, outcome.reply)

    async def _reply(self, message: AbstractIncomingMessage, result: ToolResult) -> None:
        if not message.reply_to:
            return
        body = encode_result(result, max_bytes=self.bus.max_message_bytes)
        assert self._channel is not None
        reply = aio_pika.Message(body, content_type=JSON, correlation_id=message.correlation_id)
        await self._channel.default_exchange.publish(reply, routing_key=message.reply_to, mandatory=False)

    async def _send_again(self, message: AbstractIncomingMessage, call: ToolCall) -> None:
        assert self._tasks_x is not None
        again = aio_pika.Message(
            encode(call, max_bytes=self.bus.max_message_bytes),
            content_type=JSON,
            delivery_mode=DeliveryMode.PERSISTENT,
            correlation_id=message.correlation_id,
            reply_to=message.reply_to,
            message_id=message.message_id,
            expiration=max(call.remaining(), 0.001),
        )
        await self._tasks_x.publish(again, routing_key=self.agent)

    async def _dead_letter(self, message: AbstractIncomingMessage, outcome: processing.DeadLetter) -> None:
        log.warning("dead-lettered %s from %s: %s", message.message_id, self.agent, outcome.reason)
        assert self._dlx is not None
        headers: dict[str, Any] = dict(message.headers or {})
        headers.update(
            {
                H_REASON: outcome.reason,
                H_AGENT: self.agent,
                H_ATTEMPTS: outcome.call.attempt if outcome.call else 1,
                H_DEAD_AT: time.time(),
            }
        )
        letter = aio_pika.Message(
            message.body,
            headers=headers,
            content_type=message.content_type,
            delivery_mode=DeliveryMode.PERSISTENT,
            message_id=message.message_id,
        )
        await self._dlx.publish(letter, routing_key=self.bus.topology.agent_queue(self.agent))

    async def stop(self, drain: bool = True, grace: float | None = None) -> None:
        """Cancel the consumer; finish (``drain``, within ``grace`` seconds if given) or abandon the calls
        under way, which are then requeued (unacknowledged when the channel closes)."""
        channel = self._channel
        if channel is None or self._stopping:
            return
        self._stopping = True
        if self._queue is not None and self._tag is not None:
            # A robust channel waits for the connection to come back before its own timeout applies: the
            # outer one keeps a stop from hanging while the broker is away (then nothing is left to cancel).
            with contextlib.suppress(*_LINK_ERRORS, TimeoutError):
                async with asyncio.timeout(5):
                    await self._queue.cancel(self._tag, timeout=5)
        if drain and grace is not None and self._inflight:
            _, late = await asyncio.wait(set(self._inflight), timeout=grace)
            if late:
                log.warning(
                    "%d call(s) on %s outlived the %g s grace; requeued", len(late), self.agent, grace
                )
        if not drain or grace is not None:
            for task in self._inflight:
                task.cancel()
        await asyncio.gather(*self._inflight, return_exceptions=True)
        with contextlib.suppress(*_LINK_ERRORS, TimeoutError):
            async with asyncio.timeout(5):
                await channel.close()
        self._channel = None
        self.bus._servings.discard(self)


class _RabbitSubscription(Subscription):
    def __init__(self, bus: RabbitBus, pattern: str) -> None:
        super().__init__(pattern)
        self.bus = bus
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None

    async def _open(self) -> None:
        channel = self.bus._ready_channel()
        name = f"{self.bus.topology.events}.{uuid4().hex}"
        self._queue = await channel.declare_queue(name, exclusive=True, auto_delete=True)
        await self._queue.bind(self.bus.topology.events, routing_key=self.pattern)
        self._tag = await self._queue.consume(self._on_event, no_ack=True)
        self.bus._subscriptions.add(self)

    async def _on_event(self, message: AbstractIncomingMessage) -> None:
        try:
            self._deliver(Event.model_validate_json(message.body))
        except ValueError as err:
            log.warning("dropped an unreadable event on %s: %s", self.pattern, err)

    async def _close(self) -> None:
        self.bus._subscriptions.discard(self)
        if self._queue is None:
            return
        queue, self._queue = self._queue, None
        channel = self.bus._channel
        with contextlib.suppress(*_LINK_ERRORS, TimeoutError):
            async with asyncio.timeout(5):  # see _RabbitServing.stop: robust calls wait for the broker first
                if self._tag is not None:
                    await queue.cancel(self._tag, timeout=5)
                if channel is not None:
                    await channel.queue_delete(queue.name, timeout=5)


async def delete_topology(url: str, topology: Topology, agents: Iterable[str]) -> None:
    """Delete a prefix's exchanges and queues (these agents' queues and the DLQ), e.g. after a test run."""
    connection = await aio_pika.connect(url, timeout=10)
    async with connection:
        channel = await connection.channel()
        queues = [topology.agent_queue(a) for a in agents] + [topology.dlq]
        for name in queues:
            await channel.queue_delete(name)
        for name in (topology.tasks, topology.events, topology.dlx):
            await channel.exchange_delete(name)
