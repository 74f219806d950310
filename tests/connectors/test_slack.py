"""Slack through the official clients: events signed with ``SignatureVerifier`` posted to the real
/slack/events route, replies sent with ``AsyncWebClient`` to a local server speaking the Web API."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from datetime import UTC, datetime
from typing import Any

from assistant.events import ToolFinished, Turn
from connectors.slack import SlackConnector, turn_text
from connectors.slack_render import MAX_MESSAGE_CHARS, mrkdwn, split_text
from storage.approvals import ApprovalRepository
from storage.connectors import SlackUsers
from storage.models import Schedule, ScheduledRun
from storage.web_accounts import WebAccountRepository
from tests.connectors.conftest import Stack, event_body
from tests.connectors.slack_server import BOT_USER


async def rows(stack: Stack, kind: str, tool: str | None = None, *, thread: str | None = None) -> list[Any]:
    """Audit rows of one kind (and tool, and thread: the tests of this module share one database)."""
    assert stack.runtime.services is not None
    found = await stack.runtime.services.audit.tail(1000, kind=kind)
    return [
        r for r in found if (tool is None or r.tool == tool) and (thread is None or r.thread_id == thread)
    ]


def shown(stack: Stack, channel: str, thread_ts: str) -> str:
    """What the reply message in a thread shows now: its text as last posted or updated."""
    [posted] = [c for c in stack.slack.of("chat.postMessage") if c.params.get("thread_ts") == thread_ts]
    ts = posted.answer["ts"]
    updates = [
        c for c in stack.slack.of("chat.update") if (c.params["channel"], c.params["ts"]) == (channel, ts)
    ]
    return str((updates[-1] if updates else posted).params["text"])


async def map_user(stack: Stack, slack_user: str, account: str, role: str) -> None:
    assert stack.runtime.services is not None
    await SlackUsers(stack.runtime.services.database.sessionmaker).map(slack_user, account, role)


async def test_a_mention_gets_a_threaded_reply_and_its_reminder_comes_back(stack: Stack) -> None:
    await map_user(stack, "UALICE", "alice", "operator")
    body = json.dumps(
        event_body(
            f"<@{BOT_USER}> remind me to stretch in 2 seconds",
            user="UALICE",
            ts="1700000100.000100",
            event_id="Ev001",
        )
    )
    started = time.monotonic()
    answer = await stack.slack_event(body)
    assert answer.status_code == 200 and time.monotonic() - started < 3, "Slack needs its ack within 3 s"

    [posted] = await stack.slack.wait_for("chat.postMessage", thread_ts="1700000100.000100")
    assert posted.params["channel"] == "C0001"
    await stack.slack.wait_for("chat.update", ts=posted.answer["ts"])
    await asyncio.sleep(0.2)
    reply = shown(stack, "C0001", "1700000100.000100")
    assert "remind you to stretch" in reply, reply
    assert "`reminders_create`" in reply and "✓" in reply, "the tool step is summarised under the reply"

    [call] = await rows(stack, "tool_call", "reminders_create", thread="C0001:1700000100.000100")
    assert (call.actor, call.channel, call.thread_id) == ("alice", "slack", "C0001:1700000100.000100")

    reminder = await stack.slack.wait_for("chat.postMessage", count=2, thread_ts="1700000100.000100")
    assert reminder[1].params["text"] == "⏰ Reminder: stretch"


async def test_a_direct_message_from_an_unmapped_user_runs_as_a_viewer(stack: Stack) -> None:
    body = event_body("remind me to stretch in 1 hour", user="USTRANGER", ts="1700000200.000100",
                      event_id="Ev002", kind="message", channel="D0001")  # fmt: skip
    assert (await stack.slack_event(json.dumps(body))).status_code == 200
    await stack.slack.wait_for("chat.postMessage", channel="D0001")
    await asyncio.sleep(0.3)
    reply = shown(stack, "D0001", "1700000200.000100")
    assert "As a viewer you may not run reminders_create" in reply, reply
    [refused] = await rows(stack, "refused", thread="D0001:1700000200.000100")
    assert refused.actor == "slack:USTRANGER"


async def test_wrong_signature_and_stale_timestamp_get_401_and_run_nothing(stack: Stack) -> None:
    body = json.dumps(
        event_body("what's the status", user="UALICE", ts="1700000300.000100", event_id="Ev003")
    )
    wrong = await stack.slack_event(body, secret="not-the-signing-secret")
    stale = await stack.slack_event(body, timestamp=int(time.time()) - 6 * 60)
    unsigned = await stack.http.post(f"{stack.url}/slack/events", content=body)
    assert (wrong.status_code, stale.status_code, unsigned.status_code) == (401, 401, 401)
    await asyncio.sleep(0.5)
    assert [
        c for c in stack.slack.of("chat.postMessage") if c.params.get("thread_ts") == "1700000300.000100"
    ] == []
    assert await rows(stack, "turn", thread="C0001:1700000300.000100") == []


async def test_an_event_delivered_three_times_runs_once(stack: Stack) -> None:
    await map_user(stack, "UALICE", "alice", "operator")
    body = json.dumps(
        event_body(
            "remind me to drink water in 1 hour", user="UALICE", ts="1700000400.000100", event_id="Ev004"
        )
    )
    answers = [await stack.slack_event(body)]
    for retry in (1, 2):
        headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
        answers.append(await stack.slack_event(body, headers=headers))
    assert [a.status_code for a in answers] == [200, 200, 200]
    thread = "1700000400.000100"
    await stack.slack.wait_for("chat.postMessage", thread_ts=thread)
    await asyncio.sleep(1.0)
    assert len([c for c in stack.slack.of("chat.postMessage") if c.params.get("thread_ts") == thread]) == 1
    assert len(await rows(stack, "tool_call", "reminders_create", thread=f"C0001:{thread}")) == 1
    assert len(await rows(stack, "turn", thread=f"C0001:{thread}")) == 1


def click(stack: Stack, user: str, approval_id: str, message: dict[str, Any], approve: bool = True) -> str:
    """A block_actions payload as Slack posts it (form-encoded ``payload=``)."""
    action = "kommandant_approve" if approve else "kommandant_reject"
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": "T0001"},
        "api_app_id": "A0001",
        "token": "unused",
        "team": {"id": "T0001", "domain": "test"},
        "channel": {"id": "C0001", "name": "general"},
        "container": {"type": "message", "message_ts": message["ts"], "channel_id": "C0001"},
        "message": message,
        "trigger_id": "1.2.3",
        "response_url": f"{stack.slack.api_url}response",
        "actions": [
            {"action_id": action, "block_id": "kommandant_approval", "value": approval_id, "type": "button",
             "action_ts": str(time.time())}
        ],
    }  # fmt: skip
    return "payload=" + urllib.parse.quote(json.dumps(payload))


async def test_approval_buttons_decide_once_for_an_approver_and_refuse_a_viewer(stack: Stack) -> None:
    assert stack.runtime.services is not None and stack.runtime.kommandant is not None
    sessionmaker = stack.runtime.services.database.sessionmaker
    await WebAccountRepository(sessionmaker).add("root", "a-long-password", "admin")
    await map_user(stack, "UOTTO", "otto", "operator")
    await map_user(stack, "UROOT", "root", "viewer")  # the web account's current role (admin) wins
    await map_user(stack, "UVIC", "vic", "viewer")
    mention = event_body(
        f"<@{BOT_USER}> forget my editor", user="UOTTO", ts="1700000500.000100", event_id="Ev005"
    )
    assert (await stack.slack_event(json.dumps(mention))).status_code == 200

    [request] = await stack.slack.wait_for("chat.postMessage", thread_ts="1700000500.000100")
    blocks = request.params["blocks"]
    [actions] = [b for b in blocks if b["type"] == "actions"]
    approval_id = actions["elements"][0]["value"]
    message = {
        "ts": request.answer["ts"],
        "thread_ts": "1700000500.000100",
        "blocks": blocks,
        "type": "message",
    }
    form = "application/x-www-form-urlencoded"

    refused = await stack.slack_event(click(stack, "UVIC", approval_id, message), content_type=form)
    assert refused.status_code == 200
    [ephemeral] = await stack.slack.wait_for("chat.postEphemeral", user="UVIC")
    assert "As a viewer you may not run approvals_decide" in ephemeral.params["text"]
    approvals = ApprovalRepository(sessionmaker)
    assert (await approvals.get(approval_id)).status == "pending"

    double = await asyncio.gather(
        *(stack.slack_event(click(stack, "UROOT", approval_id, message), content_type=form) for _ in range(2))
    )
    assert [r.status_code for r in double] == [200, 200]
    [updated] = await stack.slack.wait_for("chat.update", ts=request.answer["ts"])
    assert updated.params["text"] == "✅ Approved by root"
    assert "actions" not in json.dumps(updated.params["blocks"]), "the buttons are gone"
    [again] = await stack.slack.wait_for("chat.postEphemeral", user="UROOT")
    assert "approved already" in again.params["text"] or "a moment ago" in again.params["text"]

    record = await approvals.get(approval_id)
    assert (record.status, record.decided_by) == ("approved", "root")
    thread = "C0001:1700000500.000100"
    for _ in range(100):
        if await rows(stack, "tool_call", "memory_forget", thread=thread):
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)
    [ran] = await rows(stack, "tool_call", "memory_forget", thread=thread)
    assert ran.actor == "otto"
    replies = [
        c for c in stack.slack.of("chat.postMessage") if c.params.get("thread_ts") == "1700000500.000100"
    ]
    assert len(replies) == 2, "the approval request, then the reply with the forgotten result"


async def test_a_slack_429_is_waited_out(stack: Stack) -> None:
    assert stack.runtime.kommandant is not None and stack.runtime.services is not None
    kommandant = stack.runtime.kommandant
    stack.slack.rate_limit("chat.postMessage", retry_after=1)
    turn = Turn(text="post", user="root", channel="cli", role="admin")
    tool = stack.runtime.services.catalog.get("slack_post")
    started = time.monotonic()
    events = [
        e async for e in kommandant.run_tool(tool, {"channel": "#general", "text": "deploy done"}, turn)
    ]
    [finished] = [e for e in events if isinstance(e, ToolFinished)]
    assert finished.ok, finished.text
    assert time.monotonic() - started >= 1.0, "the Retry-After second was waited"
    limited, posted = [c for c in stack.slack.of("chat.postMessage") if c.params["channel"] == "#general"]
    assert limited.params.get("_rate_limited") and posted.params["text"] == "deploy done"
    assert posted.at - limited.at >= 1.0


async def test_slack_checks_the_request_url_with_a_signed_challenge(stack: Stack) -> None:
    body = json.dumps({"token": "unused", "challenge": "3eZbrw1aBm2rZgRNFdxV", "type": "url_verification"})
    answer = await stack.slack_event(body)
    assert answer.status_code == 200 and "3eZbrw1aBm2rZgRNFdxV" in answer.text
    assert (await stack.slack_event(body, secret="wrong-secret")).status_code == 401


async def test_a_mapped_slack_user_acts_as_the_account_with_its_current_role(stack: Stack) -> None:
    assert stack.runtime.services is not None and stack.hub.registry is not None
    sessionmaker = stack.runtime.services.database.sessionmaker
    await map_user(stack, "UCAROL01", "carol", "operator")
    slack = stack.hub.registry.get("slack")
    assert isinstance(slack, SlackConnector)
    assert await slack.identity("UCAROL01") == ("carol", "operator")
    assert await slack.identity("UNOBODY1") == ("slack:UNOBODY1", "viewer")
    await WebAccountRepository(sessionmaker).add("carol", "a-long-password", "viewer")
    assert await slack.identity("UCAROL01") == ("carol", "viewer"), "a web account's own role wins"


async def test_a_schedule_made_in_slack_posts_each_result_in_its_thread_once(stack: Stack) -> None:
    assert stack.runtime.services is not None
    async with stack.runtime.services.database.sessionmaker() as session, session.begin():
        schedule = Schedule(
            name="nightly-backup",
            target="start the backup bot",
            owner="alice",
            channel="slack",
            thread_id="C0009:1700000900.000100",
            every_seconds=86400,
        )
        session.add(schedule)
        await session.flush()
        now = datetime.now(UTC)
        session.add(ScheduledRun(schedule_id=schedule.id, due_at=now, status="ok", finished_at=now,
                                 result={"reply": "Started the backup bot."}))  # fmt: skip
    [posted] = await stack.slack.wait_for("chat.postMessage", thread_ts="1700000900.000100")
    assert posted.params["channel"] == "C0009"
    assert "nightly-backup" in posted.params["text"] and "Started the backup bot." in posted.params["text"]
    await asyncio.sleep(2.5)  # the next look finds it again, and sends nothing
    assert (
        len(
            [
                c
                for c in stack.slack.of("chat.postMessage")
                if c.params.get("thread_ts") == "1700000900.000100"
            ]
        )
        == 1
    )


def test_long_answers_are_split_into_messages_and_markdown_becomes_mrkdwn() -> None:
    text = " ".join(f"word{i}" for i in range(2000))  # 15,889 characters: five messages
    pieces = split_text(text)
    assert len(pieces) == 5 and all(len(p) <= MAX_MESSAGE_CHARS for p in pieces)
    assert " ".join(pieces) == text, "nothing is lost or cut inside a word"
    assert mrkdwn("**Done** <script> & [docs](https://example.org/a)") == (
        "*Done* &lt;script&gt; &amp; <https://example.org/a|docs>"
    )
    assert turn_text("<@UBOT0001|kommandant>  what's the   status") == "what's the status"
