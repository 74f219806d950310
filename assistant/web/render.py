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
from datetime import UTC
from typing import TYPE_CHECKING, Any

import chainlit as cl

from assistant import policy
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
from assistant.web.content import without_remote_images
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
WAITING_KEY = "waiting_turns"
"""User-session key of the turns waiting for an approval in the background (``_render``)."""


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
    """What one turn has shown so far: open steps, the streamed reply, whether it waits in the background."""

    reply: cl.Message | None = None  # made at the first token, so it sorts after the turn's steps
    steps: dict[str, cl.Step] = field(default_factory=dict)
    intents: dict[str, IntentRecognized] = field(default_factory=dict)
    streamed: bool = False
    streamed_text: str = ""  # the reply so far as the turn gave it; shown through without_remote_images
    waiting: bool = False
    tables: list[str] = field(default_factory=list)  # results drawn as tables, shown under the reply


async def render_turn(runtime: Any, message: cl.Message) -> str:
    """Run one typed turn through ``Kommandant.handle`` and show it; returns the whole reply text, or ""
    when the turn waits for an approval (the rest is shown in the background, see ``_render``).

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


async def _render(
    runtime: Any, events: AsyncIterator[Event | Heard], identity: Identity, view: _TurnView | None = None
) -> str:
    """Show a turn's events. Once it waits for an approval, the rest is shown by a background task and
    this returns "": Chainlit takes no new message from the person while ``on_message`` runs, and a wait
    for a decision must not stop them chatting. Leaving the chat cancels that task (``end_waiting_turns``),
    so the approval is decided as one whose requester left (its result is sent to the thread)."""
    view = view or _TurnView()
    reply_text = ""
    async for event in events:
        if isinstance(event, ReplyDone):
            reply_text = event.text
            await _finish_reply(view, event)
        elif isinstance(event, Heard):
            if event.text:
                await cl.Message(content=event.text, author=identity.user, type="user_message").send()
        else:
            await _show(runtime, view, event, identity)
            if isinstance(event, ApprovalRequired) and not view.waiting:
                view.waiting = True
                _keep_waiting(asyncio.create_task(_render(runtime, events, identity, view)))
                return ""
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
        table = runtime.services.catalog.get(event.tool).result_table(event.structured) if event.ok else None
        if table is not None:
            view.tables.append(table.markdown())
    elif isinstance(event, ApprovalRequired):
        await _show_approval(event, identity)
    elif isinstance(event, ApprovalResolved):
        await cl.Message(content=f"Approval of **{event.tool}**: {event.status}.").send()
    elif isinstance(event, ReplyDelta):
        if event.text.strip():
            if view.reply is None:
                view.reply = cl.Message(content="")
            view.streamed_text += ("" if not view.streamed else " ") + event.text.strip()
            # The whole text each time: an image split over two pieces would load once both arrived.
            await view.reply.stream_token(without_remote_images(view.streamed_text), is_sequence=True)
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
    shown = without_remote_images(event.text)
    step.output = f"{shown}\n\n— agent **{event.agent}** · {event.duration_ms:.1f} ms · {how}"
    step.language = None
    step.metadata = {"agent": event.agent, "duration_ms": round(event.duration_ms, 2), "ok": event.ok}
    step.is_error = not event.ok
    await step.update()


async def _finish_reply(view: _TurnView, event: ReplyDone) -> None:
    reply = view.reply or cl.Message(content="")
    reply.content = "\n\n".join([event.text, *view.tables])
    if event.suggestions:
        reply.content += "\n\n" + "\n".join(f"- `{s}`" for s in event.suggestions)
    reply.content = without_remote_images(reply.content)
    await (reply.update() if view.streamed else reply.send())


def approval_text(record: ApprovalInfo | ApprovalRequired) -> str:
    """The sentence shown above Approve / Reject: the tool, its exact arguments, who asked, the expiry."""
    short = (record.approval_id if isinstance(record, ApprovalRequired) else record.id)[:8]
    tool, arguments, who, expires = record.tool, record.arguments, record.requested_by, record.expires_at
    return without_remote_images(
        f"**{tool}** needs approval (`{short}`), asked by **{who}**; "
        f"expires {expires.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC.\n\n"
        f"```json\n{json.dumps(arguments, ensure_ascii=False, indent=2)}\n```"
    )


async def _show_approval(event: ApprovalRequired, identity: Identity) -> None:
    """The request, with Approve / Reject (decided by ``app.py``'s action callback) for a person who may
    approve; it holds nothing, so the person can go on chatting while it waits."""
    if policy.may_approve(identity.role):
        note, actions = "", _decision_actions(event.approval_id)
    else:
        note, actions = (
            f"\n\nAn admin decides it (their Approvals button, or `approve {event.approval_id[:8]}`). "
            "Keep chatting meanwhile: the result will appear in this thread.",
            [],
        )
    await cl.Message(content=approval_text(event) + note, actions=actions).send()


def _decision_actions(approval_id: str) -> list[cl.Action]:
    """Approve / Reject buttons for one approval (``APPROVE_ACTION``)."""
    return [
        cl.Action(
            name=APPROVE_ACTION, payload={"id": approval_id, "approve": approve}, label=label, icon=icon
        )
        for approve, label, icon in ((True, "Approve", "check"), (False, "Reject", "x"))
    ]


def _keep_waiting(task: asyncio.Task[str]) -> None:
    """Keep a turn waiting for an approval in this chat session until it ends (``end_waiting_turns``)."""
    waiting: set[asyncio.Task[str]] | None = cl.user_session.get(WAITING_KEY)
    if waiting is None:
        waiting = set()
        cl.user_session.set(WAITING_KEY, waiting)
    waiting.add(task)
    task.add_done_callback(waiting.discard)


async def end_waiting_turns() -> None:
    """The chat session ends (the page closed or lost its connection): its turns stop waiting, so their
    approvals count as ones whose requester left."""
    waiting: set[asyncio.Task[str]] = cl.user_session.get(WAITING_KEY) or set()
    for task in list(waiting):
        task.cancel()
    for task in list(waiting):
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def show_pending_approvals(approvals: list[ApprovalInfo]) -> int:
    """Show approvals waiting in any channel (as the approvals listing tool gave them), each with
    Approve / Reject buttons (``decide_approval``)."""
    for record in approvals:
        text = f"{approval_text(record)}\n\nApproving it: {record.delivery()}."
        await cl.Message(content=text, actions=_decision_actions(record.id)).send()
    return len(approvals)


async def _speak(text: str) -> None:
    try:
        await speak_reply(text)
    except Exception:
        log.warning("could not speak the reply", exc_info=True)


def bot_state_message(payload: dict[str, Any], user: str, thread: str | None) -> str | None:
    """The chat message for a bot's state change (it failed, was killed for a limit, ended, restarts),
    shown to the person who started it in the thread they started it from; None for anyone else."""
    text = payload.get("text")
    if not text or payload.get("user") != user or payload.get("thread") != thread:
        return None
    return f"🤖 {text}"


async def deliver_bot_states(runtime: Any, user: str) -> None:
    """Show state changes of the bots this person started in this chat thread, as messages."""
    from agents.bots.agent import state_topic

    async with runtime.services.bus.subscribe(state_topic(CHANNEL)) as changes:
        async for event in changes:
            message = bot_state_message(event.payload, user, cl.context.session.thread_id)
            if message is not None:
                await cl.Message(content=message).send()


async def deliver_reminders(runtime: Any, user: str) -> None:
    """Show this user's reminders from the web chat as messages in the open chat when they fall due."""
    from agents import fired_topic

    async with runtime.services.bus.subscribe(fired_topic("web")) as fired:
        async for event in fired:
            if event.payload.get("user") == user:
                text = without_remote_images(str(event.payload.get("text", "")))
                await cl.Message(content=f"⏰ Reminder: {text}").send()
