"""JSON log lines: one object per record, carrying the turn and user ids during a turn and the call, agent
and user ids while a worker serves a call; secrets stay masked."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from assistant.cli.secrets import mask_secrets_in_logs
from assistant.events import Turn
from assistant.runtime import Runtime
from bus import LocalBus, PermanentError, ToolCall, ToolResult
from telemetry.logs import json_handler


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """Everything logged at INFO or above during the test, as JSON lines."""
    stream = io.StringIO()
    handler = json_handler(stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _parsed(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_lines_logged_during_a_turn_carry_its_turn_and_user(
    runtime: Runtime, json_lines: io.StringIO
) -> None:
    assert runtime.kommandant is not None
    front = logging.getLogger("tests.front_door")
    for text in ("status", "show my schedules"):
        async for event in runtime.kommandant.handle(
            Turn(text=text, user="ann-logs", channel="cli", role="admin")
        ):
            front.info("showing %s", type(event).__name__)  # a front door rendering the turn's events
    front.info("between turns")

    lines = [line for line in _parsed(json_lines) if line["logger"] == "tests.front_door"]
    during = [line for line in lines if line["message"].startswith("showing")]
    assert during and all(line["user"] == "ann-logs" and line["level"] == "INFO" for line in during)
    assert len({line["turn"] for line in during}) == 2  # one id per turn, the same on all its lines
    assert "turn" not in lines[-1] and "user" not in lines[-1]  # the ids end with the turn


async def test_lines_logged_while_a_worker_serves_a_call_carry_call_agent_and_user(
    json_lines: io.StringIO,
) -> None:
    async def broken(call: ToolCall) -> ToolResult:
        raise PermanentError("the disk is full")

    async with LocalBus() as bus:
        await bus.serve("flaky", broken)
        call = ToolCall.create("flaky_write", {}, timeout=5, user="bob-logs")
        result = await bus.call("flaky", call)
    assert result.is_error
    logged = [line for line in _parsed(json_lines) if line["logger"] == "bus.processing"]
    assert logged, json_lines.getvalue()
    assert {(line["call"], line["agent"], line["user"]) for line in logged} == {
        (call.call_id, "flaky", "bob-logs")
    }
    assert "the disk is full" in logged[0]["message"]


def test_secrets_stay_masked_in_json_lines(json_lines: io.StringIO) -> None:
    mask_secrets_in_logs(["hunter2-metrics-secret"])
    try:
        logging.getLogger("tests.secrets").warning("connecting with %s", "amqp://u:hunter2-metrics-secret@h/")
        try:
            raise ValueError("bad password hunter2-metrics-secret")
        except ValueError:
            logging.getLogger("tests.secrets").exception("failed")
    finally:
        mask_secrets_in_logs([])
    text = json_lines.getvalue()
    assert "hunter2-metrics-secret" not in text
    lines = [line for line in _parsed(json_lines) if line["logger"] == "tests.secrets"]
    assert lines[0]["message"] == "connecting with amqp://u:***@h/"
    assert "ValueError: bad password ***" in lines[1]["exc"]


async def test_audit_rows_of_a_turn_carry_the_turn_id_its_log_lines_carry(
    runtime: Runtime, json_lines: io.StringIO
) -> None:
    assert runtime.kommandant is not None and runtime.services is not None
    front = logging.getLogger("tests.front_door")
    user = f"ann-audit-{uuid.uuid4().hex[:8]}"
    for text in ("status", "show my schedules"):
        async for event in runtime.kommandant.handle(Turn(text=text, user=user, channel="cli", role="admin")):
            front.info("showing %s", type(event).__name__)

    logged = [line["turn"] for line in _parsed(json_lines) if line["logger"] == "tests.front_door"]
    rows = [row for row in await runtime.services.audit.tail(50, owner=user) if row.actor == user]
    by_turn: dict[str, list[str]] = {}
    for row in rows:
        by_turn.setdefault((row.data or {})["turn_id"], []).append(row.kind)
    # the two turns' ids join their log lines to their audit rows, one id per turn
    assert list(by_turn) == list(dict.fromkeys(logged)) and len(by_turn) == 2
    assert all(kinds[0] == "turn" and len(kinds) > 1 for kinds in by_turn.values()), by_turn
