"""Render one turn's events in Chainlit: tool calls as steps, approvals as buttons, the reply streamed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import chainlit as cl

from assistant.events import ApprovalRequired, Failed, ReplyDelta, ReplyDone, ToolFinished, ToolStarted, Turn


async def render_turn(runtime: Any, message: cl.Message) -> None:
    kommandant = runtime.kommandant
    user = cl.user_session.get("user")
    turn = Turn(
        text=message.content or "",
        user=getattr(user, "identifier", None) or "local",
        channel="web",
        thread=cl.context.session.thread_id,
        role="admin",
    )
    reply = cl.Message(content="")
    steps: dict[str, cl.Step] = {}
    streamed = False
    async for event in kommandant.handle(turn):
        if isinstance(event, ToolStarted):
            step = cl.Step(name=f"{event.tool}", type="tool")
            step.input = json.dumps(event.arguments, ensure_ascii=False, indent=2)
            steps[event.call_id] = step
            await step.send()
        elif isinstance(event, ToolFinished):
            step = (
                steps.pop(event.call_id) if event.call_id in steps else cl.Step(name=event.tool, type="tool")
            )
            step.output = f"{event.text}\n\n(agent {event.agent}, {event.duration_ms:.1f} ms)"
            if not event.ok:
                step.is_error = True
            await step.update()
        elif isinstance(event, ApprovalRequired):
            await _ask_approval(kommandant, event, turn)
        elif isinstance(event, ReplyDelta):
            await reply.stream_token(event.text.strip() + " ")
            streamed = True
        elif isinstance(event, ReplyDone):
            reply.content = event.text
            await (reply.update() if streamed else reply.send())
        elif isinstance(event, Failed):
            pass  # the reply carries the sentence


async def _ask_approval(kommandant: Any, event: ApprovalRequired, turn: Turn) -> None:
    arguments = json.dumps(event.arguments, ensure_ascii=False)
    ask = cl.AskActionMessage(
        content=(
            f"**{event.tool}** {arguments} needs approval (asked by {event.requested_by}; "
            f"expires {event.expires_at:%H:%M:%S} UTC)."
        ),
        actions=[
            cl.Action(name="approve", payload={"approve": True}, label="Approve"),
            cl.Action(name="reject", payload={"approve": False}, label="Reject"),
        ],
        timeout=max(1, int((event.expires_at - datetime.now(UTC)).total_seconds())),
    )
    answer = await ask.send()
    if answer is None:
        return  # expired: the turn resolves it as expired
    await kommandant.decide(
        event.approval_id,
        approve=bool(answer.get("payload", {}).get("approve")),
        user=turn.user,
        role=turn.role,
        channel=turn.channel,
        thread=turn.thread,
    )


async def deliver_reminders(runtime: Any, user: str) -> None:
    """Show this user's reminders from the web chat as messages in the open chat when they fall due."""
    from agents import fired_topic

    async with runtime.services.bus.subscribe(fired_topic("web")) as fired:
        async for event in fired:
            if event.payload.get("user") == user:
                await cl.Message(content=f"⏰ Reminder: {event.payload.get('text', '')}").send()
