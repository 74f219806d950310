"""The event hub on real Postgres: a stream that falls behind its queue is caught up from the log, once
and in order; the audit trigger copies audit rows into the log; the recorder de-duplicates."""

from __future__ import annotations

import asyncio

import pytest

from assistant.web.panel import events as panel_events
from assistant.web.panel.auth import Principal
from assistant.web.panel.events import EventHub, Recorder, stream
from bus import LocalBus
from storage import Database
from storage.audit import AuditLog
from storage.events import EventLog


async def test_a_stream_that_falls_behind_gets_every_event_once(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(panel_events, "QUEUE_SIZE", 5)
    log = EventLog(db.sessionmaker)
    hub = EventHub(log, poll=0.02)
    await hub.start()
    try:
        events = stream(
            hub, Principal("ann", "admin", "token"), last_event_id=None, kinds=frozenset(), ping=5
        )
        first = asyncio.ensure_future(anext(events))  # the stream is open and waiting
        await asyncio.sleep(0.05)
        ids = [await log.append("bot_state", {"n": i}) for i in range(40)]  # 8x its queue, unread
        await asyncio.sleep(0.3)
        got = [int((await first).id or 0)]
        while len(got) < len(ids):
            got.append(int((await asyncio.wait_for(anext(events), 5)).id or 0))
        assert got == ids
        await events.aclose()
    finally:
        await hub.stop()


async def test_audit_rows_become_events_and_the_recorder_records_once(db: Database) -> None:
    log = EventLog(db.sessionmaker)
    await AuditLog(db.sessionmaker).append(
        "tool_result",
        actor="ann",
        channel="web",
        tool="system_status",
        data={"ok": True, "arguments": {"x": 1}},
    )
    await AuditLog(db.sessionmaker).append("intent", actor="ann", data={})  # not an event kind
    (row,) = await log.after(0)
    assert (row.kind, row.owner, row.data["tool"], row.data["ok"]) == (
        "tool_result",
        "ann",
        "system_status",
        True,
    )
    assert "arguments" not in row.data
    async with LocalBus() as bus:
        first, second = Recorder(bus, log, heartbeat_interval=1), Recorder(bus, log, heartbeat_interval=1)
        beat = {"agent": "memory", "instance": "memory-1"}
        for recorder in (first, second):  # two web processes hear the same heartbeat
            await recorder.record("agent.heartbeat.memory", beat)
            await recorder.record("agent.heartbeat.memory", beat)
    kinds = [e.kind for e in await log.after(row.id)]
    assert kinds == ["agent_up"]
