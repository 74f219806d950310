"""The agents view's in-flight calls and load, and the calls view's light query and short reuse."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from storage import Database
from storage.events import EventLog
from tests.panel.conftest import PanelServer, run_async, wait_until


async def test_in_flight_calls_and_load_per_agent_come_from_the_event_log(db: Database) -> None:
    log = EventLog(db.sessionmaker)
    agent = f"agent-{uuid.uuid4().hex[:8]}"
    await log.append("tool_call", {"call": f"{agent}-1", "agent": agent, "tool": "t"}, owner="ann")
    await log.append("tool_call", {"call": f"{agent}-2", "agent": agent, "tool": "t"}, owner="ann")
    await log.append(
        "tool_result",
        {"call": f"{agent}-2", "agent": agent, "tool": "t", "ok": True, "duration_ms": 30_000.0},
        owner="ann",
    )
    load = (await log.agent_load(call_timeout=timedelta(seconds=30), window=timedelta(minutes=1)))[agent]
    assert (load.in_flight, load.finished, load.busy_seconds) == (1, 1, 30.0)
    # a call older than the timeout has timed out: it is no longer in flight
    later = await log.agent_load(call_timeout=timedelta(0), window=timedelta(minutes=1))
    assert later[agent].in_flight == 0


async def test_the_calls_query_reads_only_the_shown_fields_and_filters(db: Database) -> None:
    log = EventLog(db.sessionmaker)
    tool = f"tool_{uuid.uuid4().hex[:8]}"
    for user, ok, channel in (("ann", True, "api"), ("bob", False, "chat"), ("ann", True, "panel")):
        data = {"call": uuid.uuid4().hex, "tool": tool, "agent": "a", "ok": ok, "channel": channel}
        await log.append("tool_result", {**data, "duration_ms": 12.5, "summary": "done"}, owner=user)
    everyone = await log.calls(limit=10, tool=tool)
    assert [(c.user, c.ok, c.channel) for c in everyone] == [
        ("ann", True, "panel"),
        ("bob", False, "chat"),
        ("ann", True, "api"),
    ]
    assert everyone[0].duration_ms == 12.5 and everyone[0].summary == "done" and everyone[0].agent == "a"
    assert [c.channel for c in await log.calls(limit=10, tool=tool, exclude_channel="panel")] == [
        "chat",
        "api",
    ]
    assert [c.user for c in await log.calls(limit=10, tool=tool, ok=False)] == ["bob"]
    assert [c.channel for c in await log.calls(limit=10, tool=tool, user="ann")] == ["panel", "api"]
    assert [c.id for c in await log.calls(limit=1, tool=tool, before=everyone[0].id)] == [everyone[1].id]


async def _dispatch(database_url: str, agent: str, call: str) -> None:
    async with Database(database_url, migrate=False) as db:
        await EventLog(db.sessionmaker).append("tool_call", {"call": call, "agent": agent}, owner="operator")


def test_agents_show_in_flight_calls_and_load_and_new_calls_show_at_once(panel_server: PanelServer) -> None:
    headers = panel_server.headers("operator")
    with httpx.Client(base_url=panel_server.url, headers=headers, timeout=30) as client:
        seen = [c["id"] for c in client.get("/api/calls").json()["calls"]]  # this page is reused a moment...
        assert client.post("/api/turns", json={"text": "what is the status"}).json()["complete"]
        started = time.monotonic()

        def new_calls() -> list[dict[str, Any]]:
            calls: list[dict[str, Any]] = client.get("/api/calls").json()["calls"]
            return [c for c in calls if c["id"] > max(seen, default=0)]

        # ...yet the new call shows as soon as the hub has seen it, not only when the reuse ends
        found = wait_until(new_calls, timeout=1.5, interval=0.05)
        assert found[0]["tool"] == "system_status" and time.monotonic() - started < 1.5

        agents = {a["name"]: a for a in client.get("/api/agents").json()["agents"]}
        system = agents[found[0]["agent"]]
        assert system["calls_last_minute"] >= 1 and system["load"] > 0
        assert system["load_per_instance"] == pytest.approx(system["load"] / system["instances"], abs=1e-6)
        assert system["queue_depth"] == 0  # asked of the bus (None when it cannot answer); nothing waits
        before = system["in_flight"]
        run_async(_dispatch(panel_server.database_url, system["name"], uuid.uuid4().hex))
        agents = {a["name"]: a for a in client.get("/api/agents").json()["agents"]}
        assert agents[system["name"]]["in_flight"] == before + 1
