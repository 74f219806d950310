"""The counters and histograms every process keeps, and the hooks that feed them.

Counted where things happen: a turn ends (``Kommandant.handle``), the Kommandant gets a tool call's
result (one per ``tool_result`` audit row), a worker decides what becomes of a delivered call
(``bus.processing``), speech is transcribed (``assistant.speech``). The gauges read from Postgres and
RabbitMQ (queue depth, heartbeat age, pending approvals…) are no process's state: the ``/metrics``
endpoint computes them at scrape time (``assistant.web.metrics``).

Several worker processes: with ``PROMETHEUS_MULTIPROC_DIR`` set before start, prometheus_client keeps
these values in files there, and a scrape of any process adds up every process's. Labels are tool,
agent, front door and outcome names, never a person's id, and each label takes at most
``MAX_LABEL_VALUES`` distinct values (more become ``other``), so a stray name cannot grow the series.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from prometheus_client import Counter, Histogram

from telemetry.logs import log_ids, new_id

__all__ = [
    "MAX_LABEL_VALUES",
    "SERVED",
    "SERVED_SECONDS",
    "TOOL_CALLS",
    "TOOL_CALL_SECONDS",
    "TRANSCRIPTIONS",
    "TRANSCRIPTION_SECONDS",
    "TURNS",
    "TURN_SECONDS",
    "TurnWatch",
    "call_served",
    "multiprocess",
    "observe_turn",
    "tool_call_finished",
    "transcription_timer",
]

MAX_LABEL_VALUES = 500
"""Distinct values one label keeps (tools of attached MCP servers included); the rest count as ``other``."""
MAX_LABEL_CHARS = 100

# A turn may wait minutes for an approval; a tool call is milliseconds to the call timeout (30 s default).
TURN_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
CALL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SPEECH_BUCKETS = (0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)

TURNS = Counter(
    "kommandant_turns",
    "Turns the Kommandant handled, by front door (channel) and outcome (ok, failed, cancelled).",
    ["channel", "outcome"],
)
TURN_SECONDS = Histogram(
    "kommandant_turn_seconds",
    "Time from a turn's text to its last event (approval waits included), by front door.",
    ["channel"],
    buckets=TURN_BUCKETS,
)
TOOL_CALLS = Counter(
    "kommandant_tool_calls",
    "Tool calls the Kommandant dispatched, by tool and outcome (ok, error): one per tool_result audit row.",
    ["tool", "outcome"],
)
TOOL_CALL_SECONDS = Histogram(
    "kommandant_tool_call_seconds",
    "Round trip of a tool call as the Kommandant sees it (bus, queue and handler), by tool.",
    ["tool"],
    buckets=CALL_BUCKETS,
)
SERVED = Counter(
    "kommandant_worker_calls",
    "Calls agent workers processed, by agent, tool and outcome: ok, error (an error result), replayed "
    "(the stored result of an earlier delivery), retry, dead_letter.",
    ["agent", "tool", "outcome"],
)
SERVED_SECONDS = Histogram(
    "kommandant_worker_call_seconds",
    "Time a worker spent on one delivered call (handler, result store, retries decided), by agent and tool.",
    ["agent", "tool"],
    buckets=CALL_BUCKETS,
)
TRANSCRIPTIONS = Counter(
    "kommandant_transcriptions",
    "Utterances transcribed, by engine and outcome (ok, error).",
    ["engine", "outcome"],
)
TRANSCRIPTION_SECONDS = Histogram(
    "kommandant_transcription_seconds",
    "Time to transcribe one utterance, by engine.",
    ["engine"],
    buckets=SPEECH_BUCKETS,
)


def multiprocess() -> bool:
    """Whether the values live in ``PROMETHEUS_MULTIPROC_DIR`` files (prometheus_client decides once, from
    the environment at its import, so the directory must be set before the process starts)."""
    from prometheus_client import values

    return bool(getattr(values.ValueClass, "_multiprocess", False))


class _LabelValues:
    """Bounds how many distinct values one label takes in this process."""

    def __init__(self, limit: int = MAX_LABEL_VALUES) -> None:
        self._limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str | None) -> str:
        value = (value or "unknown")[:MAX_LABEL_CHARS]
        with self._lock:
            if value in self._seen:
                return value
            if len(self._seen) >= self._limit:
                return "other"
            self._seen.add(value)
            return value


_tool = _LabelValues()
_agent = _LabelValues()
_channel = _LabelValues()


@dataclass(slots=True)
class TurnWatch:
    """The outcome of the turn under way: ``ok`` unless it showed a failure."""

    outcome: str = "ok"

    def failed(self) -> None:
        """The turn showed the person a failure."""
        self.outcome = "failed"


@contextmanager
def observe_turn(channel: str, user: str) -> Iterator[TurnWatch]:
    """Around one turn: a fresh turn id and the user in the log ids; when it ends, the turn counted and
    timed. A turn closed before its end (the person left, the request was cancelled) is ``cancelled``."""
    watch = TurnWatch()
    started = time.perf_counter()
    try:
        with log_ids(turn=new_id(), user=user, call=None, agent=None):
            yield watch
    except (GeneratorExit, asyncio.CancelledError):
        watch.outcome = "cancelled"
        raise
    finally:
        label = _channel(channel)
        TURNS.labels(label, watch.outcome).inc()
        TURN_SECONDS.labels(label).observe(time.perf_counter() - started)


def tool_call_finished(tool: str, ok: bool, seconds: float, call_id: str | None = None) -> None:
    """The Kommandant got a tool call's result (or gave up on it); ``call_id`` becomes the latency's
    exemplar (shown in the OpenMetrics format, in a single process)."""
    label = _tool(tool)
    TOOL_CALLS.labels(label, "ok" if ok else "error").inc()
    exemplar = {"call": call_id} if call_id else None
    TOOL_CALL_SECONDS.labels(label).observe(seconds, exemplar=exemplar)


def call_served(agent: str, tool: str | None, outcome: str, seconds: float) -> None:
    """A worker decided what becomes of one delivered call (``tool`` None: the message was unreadable)."""
    agent_label, tool_label = _agent(agent), _tool(tool)
    SERVED.labels(agent_label, tool_label, outcome).inc()
    SERVED_SECONDS.labels(agent_label, tool_label).observe(seconds)


@contextmanager
def transcription_timer(engine: str) -> Iterator[None]:
    """Around one transcription: counted (ok, or error when it raised) and timed."""
    started, outcome = time.perf_counter(), "error"
    try:
        yield
        outcome = "ok"
    finally:
        TRANSCRIPTIONS.labels(engine, outcome).inc()
        TRANSCRIPTION_SECONDS.labels(engine).observe(time.perf_counter() - started)
