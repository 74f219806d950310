"""The message bus: one contract (``Bus``), ``RabbitBus`` over RabbitMQ and ``LocalBus`` in one process."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bus import errors, messages
from bus.base import Bus, Handler, Serving, Subscription
from bus.errors import (
    BusError,
    BusUnavailable,
    CallTimeout,
    MessageTooLarge,
    NoWorker,
    PermanentError,
    PoisonMessage,
)
from bus.idempotency import Claim, MemoryResultStore, ResultStore
from bus.local import LocalBus
from bus.messages import CallerRole, DeadLetter, Event, ToolCall, ToolResult
from bus.rabbit import RabbitBus, Topology

if TYPE_CHECKING:
    from settings import Settings


def create_bus(settings: Settings, result_store: ResultStore | None = None) -> Bus:
    """``RabbitBus`` when ``settings.amqp_url`` is set, else ``LocalBus``; not started yet."""
    if settings.amqp_url is not None:
        return RabbitBus(
            settings.amqp_url.get_secret_value(),
            prefix=settings.bus_prefix,
            max_message_bytes=settings.max_message_bytes,
            retries=settings.call_retries,
            call_timeout=settings.call_timeout,
            result_store=result_store,
            no_worker_grace=settings.no_worker_grace,
            call_lease_seconds=settings.call_lease_seconds,
        )
    return LocalBus(
        max_message_bytes=settings.max_message_bytes,
        retries=settings.call_retries,
        call_timeout=settings.call_timeout,
        result_store=result_store,
        no_worker_grace=settings.no_worker_grace,
        call_lease_seconds=settings.call_lease_seconds,
    )


__all__ = [
    "Bus",
    "BusError",
    "BusUnavailable",
    "CallTimeout",
    "CallerRole",
    "Claim",
    "DeadLetter",
    "Event",
    "Handler",
    "LocalBus",
    "MemoryResultStore",
    "MessageTooLarge",
    "NoWorker",
    "PermanentError",
    "PoisonMessage",
    "RabbitBus",
    "ResultStore",
    "Serving",
    "Subscription",
    "ToolCall",
    "ToolResult",
    "Topology",
    "create_bus",
    "errors",
    "messages",
]
