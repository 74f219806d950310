"""The webhook front door over real HTTP: signed deliveries run once, wrong or stale ones get 401."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from connectors.webhooks import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify
from tests.connectors.conftest import HOOK_SECRET, Stack


def signed(body: bytes, delivery: str, *, secret: str = HOOK_SECRET, at: int | None = None) -> dict[str, str]:
    timestamp = str(int(time.time()) if at is None else at)
    return {
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(secret, timestamp, body),
        DELIVERY_HEADER: delivery,
        "Content-Type": "application/json",
    }


def test_a_signature_covers_the_timestamp_and_the_body() -> None:
    body, now = b'{"text": "hi"}', 1_700_000_000
    headers = {k.lower(): v for k, v in signed(body, "d", at=now).items()}
    assert verify(HOOK_SECRET, headers, body, now=now)
    assert not verify(HOOK_SECRET, headers, body + b" ", now=now)
    assert not verify("another-secret-0123456789", headers, body, now=now)
    assert not verify(HOOK_SECRET, {**headers, "x-kommandant-timestamp": str(now + 1)}, body, now=now)
    assert not verify(HOOK_SECRET, headers, body, now=now + 301)


async def test_a_good_delivery_runs_its_turn_once_even_when_delivered_twice(stack: Stack) -> None:
    assert stack.runtime.services is not None
    services = stack.runtime.services
    body = json.dumps({"text": "remind me to rotate the keys in 1 hour"}).encode()
    async with services.bus.subscribe("webhooks.result.ci") as results:
        first = await stack.http.post(f"{stack.url}/hooks/ci", content=body, headers=signed(body, "dlv-1"))
        again = await stack.http.post(f"{stack.url}/hooks/ci", content=body, headers=signed(body, "dlv-1"))
        assert (first.status_code, first.json()["status"]) == (202, "accepted")
        assert (again.status_code, again.json()["status"]) == (200, "duplicate")
        result = await results.get(timeout=10)
        assert result.payload["delivery"] == "dlv-1" and result.payload["ok"] is True
        assert "remind you to rotate the keys" in result.payload["text"]
        with pytest.raises(TimeoutError):
            await results.get(timeout=0.5)
    calls = [r for r in await services.audit.tail(500, kind="tool_call") if r.thread_id == "hook:ci"]
    assert [(c.tool, c.actor, c.channel) for c in calls] == [("reminders_create", "ci-bot", "webhook")]


async def test_a_wrong_signature_or_an_old_timestamp_gets_401_and_runs_nothing(stack: Stack) -> None:
    assert stack.runtime.services is not None
    body = json.dumps({"text": "remind me to panic in 1 hour"}).encode()
    url = f"{stack.url}/hooks/ci"
    wrong = await stack.http.post(url, content=body, headers=signed(body, "dlv-2", secret="x" * 20))
    old = await stack.http.post(url, content=body, headers=signed(body, "dlv-3", at=int(time.time()) - 301))
    tampered = await stack.http.post(url, content=body + b" ", headers=signed(body, "dlv-4"))
    unknown = await stack.http.post(f"{stack.url}/hooks/nope", content=body, headers=signed(body, "dlv-5"))
    assert [r.status_code for r in (wrong, old, tampered, unknown)] == [401, 401, 401, 404]
    await asyncio.sleep(0.3)
    turns = await stack.runtime.services.audit.tail(500, kind="turn")
    assert not [t for t in turns if "panic" in str(t.data)]
    # a delivery id refused for its signature stays unused: the genuine delivery still runs
    accepted = await stack.http.post(url, content=body, headers=signed(body, "dlv-2"))
    assert accepted.status_code == 202


async def test_an_event_hook_publishes_the_payload_on_the_bus(stack: Stack) -> None:
    assert stack.runtime.services is not None
    body = json.dumps({"alert": "disk full", "host": "db1"}).encode()
    async with stack.runtime.services.bus.subscribe("webhooks.alerts") as events:
        answer = await stack.http.post(f"{stack.url}/hooks/alerts", content=body, headers=signed(body, "a-1"))
        assert answer.status_code == 202
        event = await events.get(timeout=5)
    assert event.payload == {
        "hook": "alerts",
        "delivery": "a-1",
        "payload": {"alert": "disk full", "host": "db1"},
    }
