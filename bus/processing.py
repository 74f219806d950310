"""What a worker does with one delivery, shared by both buses: parse, check deadline and idempotency,
run the handler, and decide to reply, retry or dead-letter. The transports only carry out the decision."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from bus.base import Handler
from bus.errors import PermanentError, PoisonMessage
from bus.idempotency import KeyLocks, ResultStore
from bus.messages import ToolCall, ToolResult, decode_call
from telemetry.logs import bind_ids
from telemetry.metrics import call_served

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded retries with exponential backoff: ``retries`` more attempts after the first."""

    retries: int = 3
    backoff: float = 0.2
    max_backoff: float = 5.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt + 1``."""
        return min(self.max_backoff, self.backoff * 2 ** (attempt - 1))


@dataclass(frozen=True, slots=True)
class Reply:
    """Send ``result`` to the caller, then acknowledge."""

    call: ToolCall
    result: ToolResult


@dataclass(frozen=True, slots=True)
class Retry:
    """Wait ``delay`` seconds, send ``call`` (the next attempt) to the queue again, then acknowledge."""

    call: ToolCall
    delay: float
    reason: str


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Move the message to the dead-letter queue with ``reason``; reply ``reply`` when there is one."""

    reason: str
    call: ToolCall | None
    reply: ToolResult | None


Outcome = Reply | Retry | DeadLetter


async def process(
    body: bytes,
    *,
    agent: str,
    handler: Handler,
    store: ResultStore,
    policy: RetryPolicy,
    max_bytes: int,
    locks: KeyLocks,
    message_id: str | None = None,
) -> Outcome:
    """Decide what becomes of one delivered message, counted in the worker's metrics. Never raises except
    on cancellation."""
    started = time.perf_counter()
    outcome = await _decide(
        body,
        agent=agent,
        handler=handler,
        store=store,
        policy=policy,
        max_bytes=max_bytes,
        locks=locks,
        message_id=message_id,
    )
    tool = outcome.call.tool if outcome.call is not None else None
    call_served(agent, tool, _label(outcome), time.perf_counter() - started)
    return outcome


def _label(outcome: Outcome) -> str:
    """The outcome as the worker metrics name it."""
    if isinstance(outcome, Retry):
        return "retry"
    if isinstance(outcome, DeadLetter):
        return "dead_letter"
    return "replayed" if outcome.result.replayed else "error" if outcome.result.is_error else "ok"


async def _decide(
    body: bytes,
    *,
    agent: str,
    handler: Handler,
    store: ResultStore,
    policy: RetryPolicy,
    max_bytes: int,
    locks: KeyLocks,
    message_id: str | None,
) -> Outcome:
    try:
        call = decode_call(body, max_bytes=max_bytes)
    except PoisonMessage as err:
        log.warning("poison message %s on agent %s: %s", message_id, agent, err)
        reply = ToolResult.error(message_id or "", f"The bus could not read this call: {err}.", agent=agent)
        return DeadLetter(reason=f"poison: {err}", call=None, reply=reply)
    bind_ids(call=call.call_id, agent=agent, user=call.user)  # each delivery runs in a task of its own

    if call.remaining() <= 0:
        # The caller has given up: running it now could surprise a person who was told it timed out.
        return DeadLetter(reason="expired: the deadline passed before it was executed", call=call, reply=None)
    try:
        async with asyncio.timeout(call.remaining()), locks.hold(call.idempotency_key):
            return await _run_once(call, agent=agent, handler=handler, store=store, policy=policy)
    except TimeoutError:
        reason = "expired: the deadline passed while it was running"
        return DeadLetter(reason=reason, call=call, reply=_timeout_result(call, agent))


async def _run_once(
    call: ToolCall, *, agent: str, handler: Handler, store: ResultStore, policy: RetryPolicy
) -> Outcome:
    """The stored result of the key, or the handler's (then stored; the first stored result wins).

    Calls without side effects skip the store: running one again is harmless.
    """
    if call.side_effects:
        try:
            stored = await store.get(call.idempotency_key)
        except Exception as err:
            log.exception("result store unavailable for %s", call.call_id)
            return _failure(call, err, agent, policy, what="the result store failed")
        if stored is not None:
            result = ToolResult.model_validate(stored).model_copy(
                update={"call_id": call.call_id, "replayed": True}
            )
            return Reply(call=call, result=result)

    outcome = await _invoke(call, agent=agent, handler=handler, policy=policy)
    if not isinstance(outcome, ToolResult):
        return outcome
    result = outcome
    if not call.side_effects:
        return Reply(call=call, result=result)
    try:
        stored = await store.put(
            call.idempotency_key, call.tool, result.model_dump(mode="json", by_alias=True)
        )
    except Exception:
        # The effect happened: reply with it rather than run it again; a redelivery could repeat it.
        log.exception("could not store the result of %s (key %s)", call.call_id, call.idempotency_key)
        return Reply(call=call, result=result)
    if stored.get("call_id") == result.call_id:
        return Reply(call=call, result=result)  # ours was the first result stored under this key
    first = ToolResult.model_validate(stored).model_copy(update={"call_id": call.call_id, "replayed": True})
    return Reply(call=call, result=first)


async def _invoke(
    call: ToolCall, *, agent: str, handler: Handler, policy: RetryPolicy
) -> ToolResult | Outcome:
    """Run the handler: its result, or what to do about its failure (retry or dead-letter)."""
    try:
        result = await handler(call)
    except PermanentError as err:
        log.warning("%s on %s failed permanently: %s", call.tool, agent, err)
        reply = ToolResult.error(call.call_id, f"{call.tool} failed: {err}", agent=agent)
        return DeadLetter(reason=f"permanent error: {err}", call=call, reply=reply)
    except Exception as err:
        log.exception("%s on %s failed (attempt %d)", call.tool, agent, call.attempt)
        return _failure(call, err, agent, policy, what=f"{call.tool} failed")
    if result.agent is None:
        result.agent = agent
    return result


def _failure(call: ToolCall, err: Exception, agent: str, policy: RetryPolicy, *, what: str) -> Outcome:
    detail = f"{type(err).__name__}: {err}"
    delay = policy.delay(call.attempt)
    if call.attempt <= policy.retries and call.remaining() > delay:
        return Retry(call=call.model_copy(update={"attempt": call.attempt + 1}), delay=delay, reason=detail)
    attempts = call.attempt
    reason = f"failed after {attempts} attempt{'s' if attempts > 1 else ''}: {detail}"
    reply = ToolResult.error(call.call_id, f"{what} after {attempts} attempt(s): {err}", agent=agent)
    return DeadLetter(reason=reason, call=call, reply=reply)


def _timeout_result(call: ToolCall, agent: str) -> ToolResult:
    return ToolResult.error(
        call.call_id, f"{call.tool} on {agent} did not finish before its deadline.", agent=agent
    )
