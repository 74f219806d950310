"""Render one turn's events in Chainlit: tool calls as steps, approvals as buttons, the reply streamed.

``render_turn`` runs a typed turn and ``render_spoken`` a spoken one (the microphone,
``assistant/web/microphone.py``, through the spoken entrance); both show the events the same way. The
signed-in person comes from ``cl.user_session`` (``"identity"``, set by ``app.py`` at chat start), so
every caller gets the same user, role and policy.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import chainlit as cl

from assistant.events import (
    ApprovalRequired,
    ApprovalResolved,
    Event,
    Failed,
    Heard,
    IntentRecognized,
    ReplyDelta,
    ReplyDone,
    ToolFinished,
    ToolStarted,
    Turn,
)
from assistant.web.auth import Identity
from assistant.web.speak import speak_reply, voice_turns
from tools.builtin.approvals import ApprovalInfo

if TYPE_CHECKING:
    from voice import Transcript

log = logging.getLogger(__name__)

CHANNEL = "web"
IDENTITY_KEY = "identity"
SPEAK_KEY = "speak_replies"
LLM_KEY = "llm_model"
"""User-session key of the LLM picked in the chat settings; it goes into ``Turn.llm_model``."""
APPROVE_ACTION = "decide_approval"


def session_identity() -> Identity:
    """The person of this chat session (``app.py`` stores it at chat start, resume and every message).

    Fails closed: a session without a signed-in person (never opened, or their account was removed)
    raises ``PermissionError`` instead of acting as anyone.
    """
    identity = cl.user_session.get(IDENTITY_KEY)
    if isinstance(identity, Identity):
        return identity
    raise PermissionError("This chat session has no signed-in person; reload the page and sign in.")


@dataclass
class _TurnView:
    """What one turn has shown so far: open steps, the streamed reply, approvals waiting for a click."""

    reply: cl.Message | None = None  # made at the first token, so it sorts after the turn's steps
    steps: dict[str, cl.Step] = field(default_factory=dict)
    intents: dict[str, IntentRecognized] = field(default_factory=dict)
    asks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    answered: set[str] = field(default_factory=set)
    streamed: bool = False


async def render_turn(runtime: Any, message: cl.Message) -> str:
    """Run one typed turn through ``Kommandant.handle`` and show it; returns the whole reply text.

    The reply is spoken when the person switched "Spoken replies" on (``speak_replies`` in the user
    session).
    """
    identity = session_identity()
    turn = Turn(
        text=message.content or "",
        user=identity.user,
        channel=CHANNEL,
        thread=cl.context.session.thread_id,
        role=identity.role,
        llm_model=cl.user_session.get(LLM_KEY),
    )
    return await _render(runtime, runtime.kommandant.handle(turn), identity)


async def render_spoken(runtime: Any, transcript: Transcript) -> str:
    """Run one spoken turn through the spoken entrance (``VoiceTurns.handle``: the heard text shown as
    the person's message, an unsure command read back, approvals as for typed text) and show it."""
    identity = session_identity()
    events = voice_turns().handle(
        transcript,
        user=identity.user,
        role=identity.role,
        channel=CHANNEL,
        thread=cl.context.session.thread_id,
        llm_model=cl.user_session.get(LLM_KEY),
    )
    return await _render(runtime, events, identity)


async def _render(runtime: Any, events: AsyncIterator[Event | Heard], identity: Identity) -> str:
    view = _TurnView()
    reply_text = ""
    try:
        async for event in events:
            if isinstance(event, ReplyDone):
                reply_text = event.text
                await _finish_reply(view, event)
            elif isinstance(event, Heard):
                if event.text:
                    await cl.Message(content=event.text, author=identity.user, type="user_message").send()
            else:
                await _show(runtime, view, event, identity)
    finally:
        for task in view.asks.values():
            task.cancel()
    if reply_text and cl.user_session.get(SPEAK_KEY):
        await _speak(reply_text)
    return reply_text


async def _show(runtime: Any, view: _TurnView, event: Event, identity: Identity) -> None:
    if isinstance(event, IntentRecognized):
        view.intents[event.tool] = event
    elif isinstance(event, ToolStarted):
        # Nested in the turn's run step, like the reply message: Chainlit lists a run's children in the
        # order they were created, so the tool steps show above the reply (made at the first token).
        # A step without a parent would be a top-level item shown after the whole run, under the reply.
        parent = cl.context.current_step
        step = cl.Step(
            name=event.tool,
            type="tool",
            language="json",
            show_input="json",
            parent_id=parent.id if parent is not None else None,
        )
        step.input = json.dumps(event.arguments, ensure_ascii=False, indent=2)
        step.metadata = {"agent": event.agent}
        view.steps[event.call_id] = step
        await step.send()
    elif isinstance(event, ToolFinished):
        await _finish_step(view, event)
    elif isinstance(event, ApprovalRequired):
        view.asks[event.approval_id] = asyncio.create_task(
            _ask_approval(runtime.kommandant, event, identity, view.answered)
        )
    elif isinstance(event, ApprovalResolved):
        task = view.asks.pop(event.approval_id, None)
        if task is None or task.done():
            return
        if event.approval_id in view.answered:
            await task  # decided by this person's click: let it finish writing the outcome
            return
        task.cancel()  # decided elsewhere (another channel, another tab) or expired
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await cl.Message(content=f"Approval of **{event.tool}**: {event.status}.").send()
    elif isinstance(event, ReplyDelta):
        if event.text.strip():
            if view.reply is None:
                view.reply = cl.Message(content="")
            await view.reply.stream_token(("" if not view.streamed else " ") + event.text.strip())
            view.streamed = True
    elif isinstance(event, Failed):
        log.info("turn reported a failure: %s", event.message)  # the reply carries the sentence


async def _finish_step(view: _TurnView, event: ToolFinished) -> None:
    step = view.steps.pop(event.call_id, None) or cl.Step(name=event.tool, type="tool")
    intent = view.intents.get(event.tool)
    how = (
        f"matched by {intent.source} (confidence {intent.confidence:.2f})"
        if intent is not None
        else "run directly"
    )
    step.output = f"{event.text}\n\n— agent **{event.agent}** · {event.duration_ms:.1f} ms · {how}"
    step.language = None
    step.metadata = {"agent": event.agent, "duration_ms": round(event.duration_ms, 2), "ok": event.ok}
    step.is_error = not event.ok
    await step.update()


async def _finish_reply(view: _TurnView, event: ReplyDone) -> None:
    reply = view.reply or cl.Message(content="")
    reply.content = event.text
    if event.suggestions:
        reply.content += "\n\n" + "\n".join(f"- `{s}`" for s in event.suggestions)
    await (reply.update() if view.streamed else reply.send())


def approval_text(record: ApprovalInfo | ApprovalRequired) -> str:
    """The sentence shown above Approve / Reject: the tool, its exact arguments, who asked, the expiry."""
    short = (record.approval_id if isinstance(record, ApprovalRequired) else record.id)[:8]
    tool, arguments, who, expires = record.tool, record.arguments, record.requested_by, record.expires_at
    return (
        f"**{tool}** needs approval (`{short}`), asked by **{who}**; "
        f"expires {expires.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC.\n\n"
        f"```json\n{json.dumps(arguments, ensure_ascii=False, indent=2)}\n```"
    )


async def _ask_approval(
    kommandant: Any, event: ApprovalRequired, identity: Identity, answered: set[str]
) -> None:
    """Ask with buttons in the running turn; the click is decided through ``Kommandant.decide``."""
    content = approval_text(event)
    ask = cl.AskActionMessage(
        content=content,
        actions=[
            cl.Action(name="approve", payload={"approve": True}, label="Approve", icon="check"),
            cl.Action(name="reject", payload={"approve": False}, label="Reject", icon="x"),
        ],
        timeout=max(1, int((event.expires_at - datetime.now(UTC)).total_seconds())),
    )
    try:
        answer = await ask.send()
    except asyncio.CancelledError:
        for action in ask.actions:
            await action.remove()
        raise
    if answer is None:
        ask.content = content + "\n\nNo decision in time: the approval expired."
        await ask.update()
        return
    approve = bool(answer.get("payload", {}).get("approve"))
    answered.add(event.approval_id)
    done = await kommandant.decide(
        event.approval_id,
        approve=approve,
        user=identity.user,
        role=identity.role,
        channel=CHANNEL,
        thread=cl.context.session.thread_id,
    )
    ask.content = f"{content}\n\n{'Approved' if approve else 'Rejected'} by **{identity.user}**: {done.text}"
    await ask.update()


async def show_pending_approvals(approvals: list[ApprovalInfo]) -> int:
    """Show approvals waiting in any channel (as the approvals listing tool gave them), each with
    Approve / Reject buttons (``decide_approval``)."""
    for record in approvals:
        await cl.Message(
            content=approval_text(record),
            actions=[
                cl.Action(
                    name=APPROVE_ACTION,
                    payload={"id": record.id, "approve": True},
                    label="Approve",
                    icon="check",
                ),
                cl.Action(
                    name=APPROVE_ACTION,
                    payload={"id": record.id, "approve": False},
                    label="Reject",
                    icon="x",
                ),
            ],
        ).send()
    return len(approvals)


async def _speak(text: str) -> None:
    try:
        await speak_reply(text)
    except Exception:
        log.warning("could not speak the reply", exc_info=True)


async def deliver_reminders(runtime: Any, user: str) -> None:
    """Show this user's reminders from the web chat as messages in the open chat when they fall due."""
    from agents import fired_topic

    async with runtime.services.bus.subscribe(fired_topic("web")) as fired:
        async for event in fired:
            if event.payload.get("user") == user:
                await cl.Message(content=f"⏰ Reminder: {event.payload.get('text', '')}").send()
