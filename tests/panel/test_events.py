"""The live event stream over real HTTP: resuming with Last-Event-ID, pings, filters, per-user visibility."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx

from storage import Database
from storage.events import EventLog
from tests.panel.conftest import PanelServer, run_async


def sse_messages(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """The stream's messages as dicts (``id``, ``event``, ``data`` parsed; ``comment`` for pings)."""
    message: dict[str, Any] = {}
    for line in response.iter_lines():
        if not line:
            if message:
                yield message
            message = {}
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "":
            message["comment"] = value
        elif name == "data":
            message["data"] = json.loads(value)
        else:
            message[name] = value


def collect(
    server: PanelServer,
    role: str,
    *,
    until: Any,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 15.0,
    ready: threading.Event | None = None,
) -> list[dict[str, Any]]:
    """Messages of one stream until ``until(messages)`` holds (or ``timeout``)."""
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    with httpx.stream(
        "GET",
        f"{server.url}/api/events",
        params=params,
        headers={**server.headers(role), **(headers or {})},
        timeout=httpx.Timeout(timeout, read=3.0),
    ) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith(
            "text/event-stream"
        )
        if ready is not None:
            ready.set()
        for message in sse_messages(response):
            found.append(message)
            if until(found) or time.monotonic() > deadline:
                break
    return found


def turn(server: PanelServer, role: str, text: str = "what is the status") -> None:
    answer = httpx.post(
        f"{server.url}/api/turns", headers=server.headers(role), json={"text": text}, timeout=30
    )
    assert answer.json()["complete"]


def results(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m.get("event") == "tool_result"]


async def _stored_after(database_url: str, last: int) -> list[int]:
    async with Database(database_url, migrate=False) as db:
        return [e.id for e in await EventLog(db.sessionmaker).after(last, kinds=["tool_result"])]


def test_reconnecting_with_last_event_id_gets_every_missed_event_once(panel_server: PanelServer) -> None:
    ready = threading.Event()
    first: list[dict[str, Any]] = []

    def listen() -> None:
        first.extend(
            collect(
                panel_server,
                "admin",
                params={"kinds": "tool_result"},
                ready=ready,
                until=lambda ms: any(m["data"].get("channel") == "api" for m in results(ms)),
            )
        )

    thread = threading.Thread(target=listen)
    thread.start()
    assert ready.wait(10)
    turn(panel_server, "admin")
    thread.join(20)
    seen = results(first)
    assert seen and all(m["id"] == str(m["data"]["id"]) for m in seen)
    last = int(seen[-1]["id"])
    for _ in range(3):  # while disconnected
        turn(panel_server, "admin")
    missed = run_async(_stored_after(panel_server.database_url, last))
    assert len(missed) >= 3
    again = collect(
        panel_server,
        "admin",
        params={"kinds": "tool_result"},
        headers={"Last-Event-ID": str(last)},
        until=lambda ms: int((results(ms) or [{"id": 0}])[-1]["id"]) >= missed[-1],
    )
    ids = [int(m["id"]) for m in results(again)]
    assert ids[: len(missed)] == missed  # every one, in order, once
    assert len(set(ids)) == len(ids) and all(i > last for i in ids)


def test_quiet_streams_get_pings_and_filters_hold(panel_server: PanelServer) -> None:
    messages = collect(
        panel_server,
        "viewer",
        params={"kinds": "agent_down"},
        until=lambda ms: any("comment" in m for m in ms),
        timeout=5,
    )
    assert messages[-1] == {"comment": "ping"}  # 1 s pings in these tests (15 s by default)
    assert not [m for m in messages if m.get("event") not in (None, "agent_down")]


def test_a_viewer_sees_only_their_own_events(panel_server: PanelServer) -> None:
    turn(panel_server, "admin")
    turn(panel_server, "viewer")
    newest = run_async(_stored_after(panel_server.database_url, 0))[-1]
    messages = collect(
        panel_server,
        "viewer",
        params={"last_event_id": 0},
        until=lambda ms: any(int(m.get("id", 0)) >= newest for m in ms),
        timeout=10,
    )
    events = [m for m in messages if "data" in m]
    assert any(m["data"].get("owner") == "viewer" for m in events)
    assert all(m["data"].get("owner") in (None, "viewer") for m in events)
    admin = collect(
        panel_server,
        "admin",
        params={"last_event_id": 0},
        until=lambda ms: any(int(m.get("id", 0)) >= newest for m in ms),
        timeout=10,
    )
    assert {"admin", "viewer"} <= {m["data"].get("owner") for m in admin if "data" in m}


def test_a_ticket_opens_the_stream_without_a_header(panel_server: PanelServer) -> None:
    ticket = httpx.post(
        f"{panel_server.url}/api/events/ticket", headers=panel_server.headers("viewer")
    ).json()
    with httpx.stream(
        "GET",
        f"{panel_server.url}/api/events",
        params={"ticket": ticket["ticket"]},
        timeout=httpx.Timeout(5, read=3),
    ) as response:
        assert response.status_code == 200
        first = next(sse_messages(response))
    assert first == {"comment": "ping"}
    forged = httpx.get(f"{panel_server.url}/api/events", params={"ticket": ticket["ticket"] + "0"})
    assert forged.status_code == 401
