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
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import chainlit as cl
from chainlit.types import ThreadDict

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
from tools.builtin.system import SystemStatus

if TYPE_CHECKING:
    from voice import Transcript

log = logging.getLogger(__name__)

CHANNEL = "web"
IDENTITY_KEY = "identity"
SPEAK_KEY = "speak_replies"
LLM_KEY = "llm_model"
"""User-session key of the LLM picked in the chat settings; it goes into ``Turn.llm_model``."""
APPROVE_ACTION = "decide_approval"
SUGGEST_ACTION = "suggested_command"
"""Action of a no-match reply's suggestion chip: its payload's ``text`` is sent as the person's message."""
TIMEZONE_KEY = "timezone"
"""User-session key of the person's time zone as their browser reports it (``public/kommandant.js``)."""
CARDS_KEY = "approval_cards"
"""User-session key: approval id -> the messages in this tab showing it with Approve / Reject."""
TRY_LEAD = " Try: "
"""Where a no-match reply starts naming its suggestions (``Kommandant._no_match``): the web chat shows them
as chips instead, so they are not said twice."""
CHIPS_KEY = "source_chips"
"""Reply-step metadata key: the reply's source chips (name and passage), sent again on resume."""
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
    passages: list[cl.Text] = field(default_factory=list)  # knowledge hits, as source chips on the reply


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
        if view.reply is not None:  # a second command of the sentence: its reply goes after this step
            await view.reply.remove()
            view.reply = None
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
        listing = _listing(runtime, event) if event.ok else ""
        passages = passage_elements(event.structured) if event.ok else []
        await _finish_step(view, event, listing, passages)
        if listing:
            view.tables.append(listing)
        view.passages.extend(passages)
    elif isinstance(event, ApprovalRequired):
        await _show_approval(runtime, event, identity)
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


def _listing(runtime: Any, event: ToolFinished) -> str:
    """The items of a list result as Markdown: the table the output model draws, else every item of its
    list as a table row, unless the sentence already names each one (help) or the items are passages
    (shown as source chips)."""
    table = runtime.services.catalog.get(event.tool).result_table(event.structured)
    if table is not None:
        return table.markdown()
    return list_table(event.structured, event.text, _timezone(runtime))


async def _finish_step(
    view: _TurnView, event: ToolFinished, listing: str = "", passages: list[cl.Text] | None = None
) -> None:
    step = view.steps.pop(event.call_id, None) or cl.Step(name=event.tool, type="tool")
    intent = view.intents.get(event.tool)
    how = (
        f"matched by {intent.source} (confidence {intent.confidence:.2f})"
        if intent is not None
        else "run directly"
    )
    shown = without_remote_images("\n\n".join(part for part in (event.text, listing) if part))
    if passages:
        shown += "\n\n" + "\n".join(f"{i}. {p.content!s}" for i, p in enumerate(passages, 1))
    step.output = f"{shown}\n\n— agent **{event.agent}** · {event.duration_ms:.1f} ms · {how}"
    step.language = None
    step.metadata = {"agent": event.agent, "duration_ms": round(event.duration_ms, 2), "ok": event.ok}
    step.is_error = not event.ok
    await step.update()


async def _finish_reply(view: _TurnView, event: ReplyDone) -> None:
    reply = view.reply or cl.Message(content="")
    text = event.text
    if event.suggestions:  # said once, as chips that send the sentence (the text named them too)
        text = text.split(TRY_LEAD, 1)[0] + " Try one of these:"
        reply.actions = [
            cl.Action(name=SUGGEST_ACTION, payload={"text": s}, label=s, icon="message-square")
            for s in event.suggestions
        ]
    parts = [text, *view.tables]
    if view.passages:
        parts.append("Sources: " + " · ".join(p.name for p in view.passages))
    reply.content = without_remote_images("\n\n".join(part for part in parts if part))
    if view.passages:  # kept with the step, so a resumed thread gets its chips back (``restore_chips``)
        chips = [{"name": p.name, "content": str(p.content)} for p in view.passages]
        reply.metadata = {**(reply.metadata or {}), CHIPS_KEY: chips}
    await (reply.update() if view.reply is not None and view.streamed else reply.send())  # with actions
    for element in view.passages:  # after the text: a chip is a link on its name in the reply
        await element.send(for_id=reply.id)


async def restore_chips(thread: ThreadDict) -> int:
    """Give a resumed thread's replies their source chips again; returns how many.

    Elements are not stored with the thread (``history.py``: no blob store), so each reply keeps its
    chips' names and passages in its metadata (``CHIPS_KEY``). Chainlit calls ``on_chat_resume`` before
    it sends the thread to the page, and the page then replaces its elements with the thread's: so the
    chips go into ``thread["elements"]`` (each passage a file of this session, served by Chainlit's own
    file route), not out as separate element messages the thread would overwrite.
    """
    elements = list(thread.get("elements") or [])
    session = cl.context.session
    root = os.environ.get("CHAINLIT_PARENT_ROOT_PATH", "") + os.environ.get("CHAINLIT_ROOT_PATH", "")
    for step in thread.get("steps") or []:
        for chip in _stored_chips(step.get("metadata")):
            text = cl.Text(name=chip.name, content=chip.content, display="side", for_id=str(step["id"]))
            text.thread_id = str(thread.get("id") or "")
            stored = await session.persist_file(name=chip.name, mime="text/plain", content=chip.content)
            text.chainlit_key = stored["id"]
            text.url = f"{root}/project/file/{stored['id']}?session_id={session.id}"
            elements.append(text.to_dict())
    added = len(elements) - len(thread.get("elements") or [])
    thread["elements"] = elements
    return added


def _stored_chips(metadata: Any) -> list[Chip]:
    """The chips a reply step keeps in its metadata (a dict, or its JSON text), if any."""
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except ValueError:
            return []
    chips = metadata.get(CHIPS_KEY) if isinstance(metadata, dict) else None
    if not isinstance(chips, list):
        return []
    return [
        Chip(str(c["name"]), str(c.get("content", "")))
        for c in chips
        if isinstance(c, dict) and c.get("name")
    ]


_ISO_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def _cell(value: Any, tz: ZoneInfo) -> str:
    """One table cell: moments in the person's time zone, ids short, nested values as compact JSON."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 80 else text[:79] + "…"
    text = str(value)
    if _ISO_MOMENT.match(text):
        with contextlib.suppress(ValueError):
            return f"{datetime.fromisoformat(text).astimezone(tz):%Y-%m-%d %H:%M}"
    return text


def list_table(structured: dict[str, Any] | None, sentence: str, tz: ZoneInfo) -> str:
    """Every item of a structured result's list (audit rows, reminders, bots, schedules, approvals) as a
    Markdown table; "" when there is no list of items, when the sentence names every item already, or
    when the items are passages (``passage_elements`` shows those)."""
    if not structured:
        return ""
    for value in structured.values():
        if not (isinstance(value, list) and value and all(isinstance(item, dict) for item in value)):
            continue
        if any("snippet" in item for item in value):
            return ""
        if _all_named(value, sentence):
            return ""
        columns = [k for k, v in value[0].items() if not isinstance(v, list)]
        rows = [[_cell(item.get(k), tz) for k in columns] for item in value]
        for i, column in enumerate(columns):
            if column == "id":  # a UUID is long: its first 8 characters name it here as everywhere
                for row in rows:
                    row[i] = row[i][:8]

        def line(cells: list[str]) -> str:
            return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

        return "\n".join([line(columns), line(["---"] * len(columns)), *map(line, rows)])
    return ""


def _all_named(items: list[dict[str, Any]], sentence: str) -> bool:
    """Whether the sentence already shows every item: each has a text of its own (one no other item has,
    e.g. an agent's name, not a shared actor) that appears in it."""
    texts = [
        {v for k, v in item.items() if isinstance(v, str) and len(v) >= 3 and k != "id"} for item in items
    ]
    for i, own in enumerate(texts):
        others = set().union(*(t for j, t in enumerate(texts) if j != i))
        if not any(text in sentence for text in own - others):
            return False
    return True


@dataclass(frozen=True, slots=True)
class Chip:
    """A source chip: its name (where the passage is) and what the side panel shows when it is opened."""

    name: str
    content: str


def passage_chips(structured: dict[str, Any] | None) -> list[Chip]:
    """Knowledge hits as source chips, named after where each passage is (document, page, section); the
    passage keeps its own lines (numbered steps stay steps)."""
    if not structured:
        return []
    hits = next(
        (
            v
            for v in structured.values()
            if isinstance(v, list) and v and all(isinstance(i, dict) and "snippet" in i for i in v)
        ),
        [],
    )
    elements = []
    for number, hit in enumerate(hits, 1):
        document = str(hit.get("title") or hit.get("source") or "a note")
        where = [f"[{number}] {document}"]
        if hit.get("page") is not None:
            where.append(f"p. {hit['page']}")
        if hit.get("section") and hit.get("section") != hit.get("title"):
            where.append(f"§ {hit['section']}")
        name = ", ".join(where)
        header = [f"**{document}**"]
        if hit.get("source") and hit.get("source") != document:
            header.append(f"source: {hit['source']}")
        if hit.get("section"):
            header.append(f"section: {hit['section']}")
        if hit.get("page") is not None:
            header.append(f"page {hit['page']}")
        content = without_remote_images(" · ".join(header) + "\n\n" + str(hit.get("snippet", "")))
        elements.append(Chip(name, content))
    return elements


def passage_elements(structured: dict[str, Any] | None) -> list[cl.Text]:
    """The source chips as side-panel texts: the reply names them, so each name is a link that opens
    its passage in the side panel."""
    return [cl.Text(name=c.name, content=c.content, display="side") for c in passage_chips(structured)]


def ago(moment: datetime, now: datetime) -> str:
    """How long before ``now`` a moment was, as a person says it: "3 s ago", "4 min ago", "2 h ago",
    "5 d ago" ("just now" for a moment at or after ``now``, as clocks of two machines may differ)."""
    seconds = int((now - moment).total_seconds())
    if seconds <= 0:
        return "just now"
    for size, unit in ((86_400, "d"), (3_600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def status_table(status: SystemStatus, now: datetime, tz: ZoneInfo) -> str:
    """The Status side panel: each agent's state, replicas, tools, and its last heartbeat as an age with
    the time of day in the person's time zone ("3 s ago (18:02:11)"), not a raw ISO moment."""
    rows = ["| agent | state | replicas | last heartbeat | tools |", "|---|---|---|---|---|"]
    for agent in status.agents:
        beat = agent.last_heartbeat
        heartbeat = f"{ago(beat, now)} ({beat.astimezone(tz):%H:%M:%S})" if beat is not None else "—"
        rows.append(
            f"| {agent.name} | {'up' if agent.alive else 'down'} | {agent.instances} "
            f"| {heartbeat} | {', '.join(agent.tools)} |"
        )
    return "\n".join(rows)


def person_timezone(runtime: Any) -> ZoneInfo:
    """The time zone times are shown in for this chat session's person (see ``_timezone``)."""
    return _timezone(runtime)


def _timezone(runtime: Any) -> ZoneInfo:
    """The person's time zone: their browser's, else the server's setting, else UTC."""
    for name in (cl.user_session.get(TIMEZONE_KEY), runtime.settings.timezone, "UTC"):
        if name:
            try:
                return ZoneInfo(str(name))
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def approval_text(
    record: ApprovalInfo | ApprovalRequired, description: str = "", tz: ZoneInfo | None = None
) -> str:
    """The card shown above Approve / Reject: what will happen in words (``description``), the tool, who
    asked, the expiry in the person's time zone (``tz``), and the exact arguments."""
    short = (record.approval_id if isinstance(record, ApprovalRequired) else record.id)[:8]
    tool, arguments, who, expires = record.tool, record.arguments, record.requested_by, record.expires_at
    zone = tz or ZoneInfo("UTC")
    local = expires.astimezone(zone)
    what = f"**Will {description}.**\n\n" if description else ""
    return without_remote_images(
        f"{what}**{tool}** needs approval (`{short}`), asked by **{who}**; "
        f"expires {local:%Y-%m-%d %H:%M:%S} {zone.key}.\n\n"
        f"```json\n{json.dumps(arguments, ensure_ascii=False, indent=2)}\n```"
    )


async def _describe(
    runtime: Any, tool: str, arguments: dict[str, Any], identity: Identity, requested_by: str
) -> str:
    """What the call would do in words, from the owning agent's ``describe`` read tool (as this person;
    a describer of private data only for the person who asked)."""
    thread = cl.context.session.thread_id
    turn = Turn(
        text=f"[describe {tool}]", user=identity.user, channel=CHANNEL, thread=thread, role=identity.role
    )
    try:
        return str(await runtime.kommandant.describe_call(tool, arguments, turn, requested_by=requested_by))
    except Exception:
        log.warning("could not describe a call of %s", tool, exc_info=True)
        return ""


def _keep_card(approval_id: str, message: cl.Message) -> None:
    """Remember a card in this tab, so the decision (made anywhere) updates it (``settle_cards``)."""
    cards: dict[str, list[cl.Message]] | None = cl.user_session.get(CARDS_KEY)
    if cards is None:
        cards = {}
        cl.user_session.set(CARDS_KEY, cards)
    cards.setdefault(approval_id, []).append(message)


async def settle_cards(approval_id: str, status: str, by: str | None) -> int:
    """Every card of this tab for ``approval_id`` shows the decision and loses its buttons; returns how
    many there were."""
    cards: dict[str, list[cl.Message]] = cl.user_session.get(CARDS_KEY) or {}
    shown = cards.pop(approval_id, [])
    outcome = status.capitalize() or "Decided"
    for message in shown:
        for action in list(message.actions):
            await action.remove()
        message.actions = []
        message.content += f"\n\n**{outcome}**" + (f" by **{by}**" if by else "") + "."
        await message.update()
    return len(shown)


async def _show_approval(runtime: Any, event: ApprovalRequired, identity: Identity) -> None:
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
    description = await _describe(runtime, event.tool, event.arguments, identity, event.requested_by)
    text = approval_text(event, description, _timezone(runtime)) + note
    message = cl.Message(content=text, actions=actions)
    await message.send()
    _keep_card(event.approval_id, message)


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


async def show_pending_approvals(runtime: Any, approvals: list[ApprovalInfo], identity: Identity) -> int:
    """Show approvals waiting in any channel (as the approvals listing tool gave them), each with
    Approve / Reject buttons (``decide_approval``)."""
    for record in approvals:
        description = await _describe(runtime, record.tool, record.arguments, identity, record.requested_by)
        card = approval_text(record, description, _timezone(runtime))
        message = cl.Message(
            content=f"{card}\n\nApproving it: {record.delivery()}.", actions=_decision_actions(record.id)
        )
        await message.send()
        _keep_card(record.id, message)
    return len(approvals)


async def deliver_decisions(runtime: Any) -> None:
    """Settle this tab's approval cards as approvals are decided, by anyone, in any tab or channel."""
    from agents import APPROVALS_DECIDED

    async with runtime.services.bus.subscribe(APPROVALS_DECIDED) as decided:
        async for event in decided:
            payload = event.payload
            await settle_cards(str(payload.get("id", "")), str(payload.get("status", "")), payload.get("by"))


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
