"""Structured logs: the ids of the turn or tool call under way, and one JSON object per log record.

The ids live in context variables, set where a turn starts (``Kommandant.handle``) and where a worker
takes up a call (``bus.processing``). Each asyncio task has its own copy, so two turns or two calls
served at once never mix their ids; every record logged while one is under way carries them.
"""

from __future__ import annotations

import json
import logging
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

__all__ = [
    "IDS",
    "IdsFilter",
    "JsonFormatter",
    "bind_ids",
    "current_ids",
    "json_handler",
    "log_ids",
    "new_id",
    "setup_log_format",
]

IDS = ("turn", "call", "agent", "user")
"""The ids a log record carries when they are known: the turn, the tool call, the agent serving it, and
the person asking (their account name; logs are for operators, unlike metric labels)."""
_VARS: dict[str, ContextVar[str | None]] = {
    name: ContextVar(f"kommandant_log_{name}", default=None) for name in IDS
}


def new_id() -> str:
    """A fresh id for a turn (16 hex digits: unique enough to find one turn in a day of logs)."""
    return uuid.uuid4().hex[:16]


def current_ids() -> dict[str, str]:
    """The ids known in the current context (only those set)."""
    return {name: value for name, var in _VARS.items() if (value := var.get()) is not None}


def bind_ids(**ids: str | None) -> None:
    """Set ids for the rest of the current task. For code that runs in a task of its own per unit of
    work (the buses run each delivery in one), so nothing needs restoring."""
    for name, value in ids.items():
        _VARS[name].set(value)


@contextmanager
def log_ids(**ids: str | None) -> Iterator[None]:
    """Set ids for the block, then put back what was there. The previous values are set again rather
    than reset by token: an async generator holding the block may be closed from another context."""
    previous = {name: _VARS[name].get() for name in ids}
    bind_ids(**ids)
    try:
        yield
    finally:
        bind_ids(**previous)


class IdsFilter(logging.Filter):
    """Adds the current ids to each record as attributes (``record.turn`` …; None when unknown)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _VARS.items():
            if not hasattr(record, name):  # an id passed with ``extra=`` wins
                setattr(record, name, var.get())
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``message``, the known ids, and ``exc``
    (the traceback) when there is one. Secrets are masked before this runs (``mask_secrets_in_logs``
    masks every record as it is created)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in IDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False, default=str)


def json_handler(stream: TextIO | None = None) -> logging.Handler:
    """A handler writing JSON lines with the ids to ``stream`` (standard error by default)."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(IdsFilter())
    return handler


def setup_log_format(
    log_format: Literal["text", "json"],
    level: str,
    text_handler: logging.Handler,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send every record to one root handler: ``text_handler`` (readable lines) or, for ``json``, JSON
    lines on ``stream``. Replaces handlers configured before; returns the one installed."""
    handler = json_handler(stream) if log_format == "json" else text_handler
    if log_format == "text":
        handler.addFilter(IdsFilter())  # the ids stay available to a text format that names them
    logging.basicConfig(level=level, format="%(name)s: %(message)s", handlers=[handler], force=True)
    return handler
