"""A command typed in the web chat reaches the control panel's live event stream, on the one web server
``kommandant up`` runs (chat and panel together), in headless Chromium."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.web.conftest import WebServer, run_async
from tests.web.test_browser import ask_for_reply, login, new_page, send, shot

USER = ("fay", "fay-password-123")
FEED_SECONDS = 2.0
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def page(web_server: WebServer, browser: object) -> object:
    """An operator signed in to the chat (test_browser's helpers)."""
    run_async(web_server.add_account(*USER, "operator"))
    opened = new_page(browser, [])
    login(opened, web_server, *USER)
    opened.locator("#chat-input").wait_for()  # type: ignore[attr-defined]
    # The first turn on a fresh server loads the intent models (seconds); the feed is timed on a warm one.
    ask_for_reply(opened, "what's the status")
    return opened


def _messages(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """The stream's events as dicts (``event``, ``id``, ``data`` parsed), pings left out."""
    message: dict[str, Any] = {}
    for line in response.iter_lines():
        if not line:
            if "event" in message:
                yield message
            message = {}
            continue
        name, _, value = line.partition(":")
        if name:
            value = value[1:] if value.startswith(" ") else value
            message[name] = json.loads(value) if name == "data" else value


def test_a_command_in_the_chat_appears_in_the_event_stream(page: object, web_server: WebServer) -> None:
    # The dashboard's own way in: a ticket bought with the chat's login cookie, then ?ticket= on the stream.
    cookies = "; ".join(f"{c['name']}={c['value']}" for c in page.context.cookies())  # type: ignore[attr-defined]
    answer = httpx.post(f"{web_server.url}/api/events/ticket", headers={"Cookie": cookies})
    assert answer.status_code == 200, answer.text
    ticket = answer.json()["ticket"]

    ready, arrived = threading.Event(), threading.Event()
    seen: list[tuple[float, dict[str, Any]]] = []

    def listen() -> None:
        params = {"ticket": ticket, "kinds": "tool_call"}
        url = f"{web_server.url}/api/events"
        with httpx.stream("GET", url, params=params, timeout=httpx.Timeout(30, read=30)) as response:
            assert response.status_code == 200
            ready.set()
            for message in _messages(response):
                seen.append((time.monotonic(), message))
                if message["data"].get("tool") == "system_status":
                    arrived.set()
                    return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    assert ready.wait(10), "the event stream did not open"
    sent_at = time.monotonic()
    send(page, "what's the status")
    assert arrived.wait(15), f"no tool_call of system_status in the stream: {seen}"
    thread.join(5)
    shot(page, "panel-feed-chat-command")

    at, event = seen[-1]
    assert at - sent_at < FEED_SECONDS, f"the event took {at - sent_at:.2f} s"
    data = event["data"]
    assert (data["owner"], data["channel"], data["kind"]) == (USER[0], "web", "tool_call")
    assert event["id"] == str(data["id"]) and data["turn_id"]  # resumable, and joinable to the logs
