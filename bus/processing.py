"""What a worker does with one delivery, shared by both buses: parse, check deadline and idempotency,
run the handler, and decide to reply, retry or dead-letter. The transports only carry out the decision."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from bus.base import Handler
from bus.errors import PermanentError, PoisonMessage
from bus.idempotency import Claim, KeyLocks, LeasePolicy, ResultStore
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
    lease: LeasePolicy,
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
        lease=lease,
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
    lease: LeasePolicy,
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
            if not call.side_effects:  # running a read twice is harmless: no store, no lease
                return await _reply_or_failure(call, agent=agent, handler=handler, policy=policy)
            return await _run_once(
                call, agent=agent, handler=handler, store=store, policy=policy, lease=lease
            )
    except TimeoutError:
        reason = "expired: the deadline passed while it was running"
        return DeadLetter(reason=reason, call=call, reply=_timeout_result(call, agent))


async def _reply_or_failure(call: ToolCall, *, agent: str, handler: Handler, policy: RetryPolicy) -> Outcome:
    outcome = await _invoke(call, agent=agent, handler=handler, policy=policy)
    return Reply(call=call, result=outcome) if isinstance(outcome, ToolResult) else outcome


async def _run_once(
    call: ToolCall,
    *,
    agent: str,
    handler: Handler,
    store: ResultStore,
    policy: RetryPolicy,
    lease: LeasePolicy,
) -> Outcome:
    """The stored result of the key, or the handler's under a lease on the key (then stored, which ends
    the lease; the first stored result wins)."""
    key = call.idempotency_key
    try:
        stored = await _claim(call, store, lease)
    except Exception as err:
        log.exception("result store unavailable for %s", call.call_id)
        return _failure(call, err, agent, policy, what="the result store failed")
    if isinstance(stored, dict):
        return Reply(call=call, result=_replayed(stored, call))
    if stored.taken_over and not call.repeatable:
        # The worker that ran it died after claiming it and before storing a result: its effect may have
        # happened. Running it again could do it twice; this answer is stored like any result.
        log.warning("%s (key %s) was under way on a worker that died; not run again", call.tool, key)
        return await _store(call, _unknown_outcome(call, agent), store, agent)
    try:
        async with _renewing(store, key, lease):
            outcome = await _invoke(call, agent=agent, handler=handler, policy=policy)
    except asyncio.CancelledError:
        # Stopped mid-call (a worker abandoning its calls): the lease ends now, so the redelivery takes
        # the call over at once, knowing it was under way here.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await asyncio.shield(store.renew(key, lease.holder, 0))
        raise
    if not isinstance(outcome, ToolResult):
        with contextlib.suppress(Exception):  # an unreleased lease only delays the retry until it expires
            await store.release(key, lease.holder)
        return outcome
    return await _store(call, outcome, store, agent)


async def _claim(call: ToolCall, store: ResultStore, lease: LeasePolicy) -> Claim | dict[str, Any]:
    """Our lease on the call's key, or the result stored under it (before, or while we waited for another
    worker's lease)."""
    key = call.idempotency_key
    while True:
        claim = await store.claim(key, call.tool, lease.holder, lease.seconds)
        if claim.stored is not None:
            return claim.stored
        if claim.ours:
            return claim
        # Another worker runs it now: wait for its result, or for its lease to lapse (the deadline of the
        # whole delivery bounds the wait).
        until = time.monotonic() + claim.wait
        while time.monotonic() < until:
            await asyncio.sleep(min(lease.poll, max(until - time.monotonic(), 0.01)))
            stored = await store.get(key)
            if stored is not None:
                return stored


@contextlib.asynccontextmanager
async def _renewing(store: ResultStore, key: str, lease: LeasePolicy) -> AsyncIterator[None]:
    """Renew the lease on ``key`` every third of its length while the block runs."""

    async def renew() -> None:
        while True:
            await asyncio.sleep(lease.seconds / 3)
            try:
                if not await store.renew(key, lease.holder, lease.seconds):
                    log.warning("the lease on %s was taken over while its call still ran here", key)
                    return
            except Exception as err:  # the next renewal may get through before the lease lapses
                log.warning("could not renew the lease on %s: %s", key, err)

    renewer = asyncio.create_task(renew(), name=f"lease-{key}")
    try:
        yield
    finally:
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer


async def _store(call: ToolCall, result: ToolResult, store: ResultStore, agent: str) -> Outcome:
    """Store ``result`` under the call's key (ending its lease) and reply with whatever is stored first."""
    try:
        stored = await store.put(
            call.idempotency_key, call.tool, result.model_dump(mode="json", by_alias=True)
        )
    except Exception:
        # The effect happened: reply with it rather than run it again. The lease lapses; a redelivery
        # that takes it over then says the call may have happened, unless the tool is repeatable.
        log.exception("could not store the result of %s (key %s)", call.call_id, call.idempotency_key)
        return Reply(call=call, result=result)
    if stored.get("call_id") == result.call_id:
        return Reply(call=call, result=result)  # ours was the first result stored under this key
    return Reply(call=call, result=_replayed(stored, call))


def _replayed(stored: dict[str, Any], call: ToolCall) -> ToolResult:
    return ToolResult.model_validate(stored).model_copy(update={"call_id": call.call_id, "replayed": True})


def _unknown_outcome(call: ToolCall, agent: str) -> ToolResult:
    return ToolResult.error(
        call.call_id,
        f"{call.tool} was under way on a worker of the {agent} agent that stopped before it answered, so it "
        "may or may not have happened. Check before you ask for it again.",
        agent=agent,
    )


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
