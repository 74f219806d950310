"""The Chainlit web chat. Every message goes through ``Kommandant.handle``; this module only wires hooks.

Chainlit loads this file by path, so it reaches the running services through ``assistant.web.server``. Login:
``assistant.web.auth``; thread history: ``assistant.web.history``; rendering: ``assistant.web.render``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from datetime import UTC, datetime
from typing import Any

import chainlit as cl
from chainlit.data.base import BaseDataLayer
from chainlit.input_widget import Select, Switch
from chainlit.oauth_providers import get_configured_oauth_providers
from chainlit.types import ThreadDict
from fastapi import Request, Response

from assistant import policy
from assistant.events import Turn
from assistant.reads import ToolReadError, read_model
from assistant.web.auth import LOCAL_USER, Identity
from assistant.web.content import without_remote_images
from assistant.web.render import (
    APPROVE_ACTION,
    CHANNEL,
    IDENTITY_KEY,
    LLM_KEY,
    SPEAK_KEY,
    SUGGEST_ACTION,
    TIMEZONE_KEY,
    deliver_bot_states,
    deliver_decisions,
    deliver_reminders,
    end_waiting_turns,
    person_timezone,
    render_turn,
    restore_chips,
    session_identity,
    show_pending_approvals,
    status_table,
)
from assistant.web.server import chat_history, kommandant, runtime, turn_gate, web_auth, web_sessions
from assistant.web.sessions import SESSION_CLAIM, request_token, socket_token
from assistant.web.uploads import ingest_uploads, uploaded_files
from tools.builtin import approvals as approval_tools
from tools.builtin import system as system_tools
from tools.builtin.approvals import ApprovalList
from tools.builtin.system import SystemStatus

LLM_OFF = "off (templates only)"
STATUS_COMMAND = "Status"
APPROVALS_COMMAND = "Approvals"
MAX_STARTERS = 6
PAGE_MESSAGE = "kommandant.page"
"""``kind`` of the window messages this server sends to ``public/kommandant.js`` (thread address, notice,
whether an LLM is on); the page's own messages back carry ``CHAT_MESSAGE``."""
CHAT_MESSAGE = "kommandant.chat"
NAMED_KEY = "thread_named"
"""User-session key set once the thread has its first message (and so its name)."""
AUTO_LOGIN_NOTICE = (
    "Signed in automatically as the local admin: no web account exists yet. "
    "`kommandant users add NAME --role admin` turns on passwords."
)
NOT_ALLOWED = (
    "You are signed in as {user}, but that account no longer exists or a password is now required. "
    "Log out (top right) and sign in again."
)
STOPPING = "The server is stopping for a moment: send that again when the page has reconnected."
"""The reply to a message that arrives while the server finishes its turns under way (SIGTERM)."""
SESSION_ENDED = (
    "Your login has ended (you logged out, or your account, password or role changed). "
    "Reload the page and sign in again."
)


@cl.data_layer
def _data_layer() -> BaseDataLayer:
    return chat_history()


@cl.password_auth_callback
async def password_login(username: str, password: str) -> cl.User | None:
    return await _chainlit_user(await web_auth().password_login(username, password))


@cl.header_auth_callback
async def header_login(headers: Any) -> cl.User | None:
    return await _chainlit_user(await web_auth().header_login(headers))


if get_configured_oauth_providers():

    @cl.oauth_callback
    async def oauth_login(
        provider_id: str,
        token: str,
        raw_user_data: dict[str, str],
        default_user: cl.User,
        id_token: str | None,
    ) -> cl.User | None:
        return await _chainlit_user(await web_auth().oauth_login(default_user.identifier, provider_id))


async def _chainlit_user(identity: Identity | None) -> cl.User | None:
    """The user Chainlit puts in the login token: with a new session's id, checked on every request."""
    if identity is None:
        return None
    session = await web_sessions().start(identity.user, identity.provider)
    metadata = {"role": identity.role, "provider": identity.provider, SESSION_CLAIM: session}
    return cl.User(identifier=identity.user, metadata=metadata)


@cl.on_logout
async def logout(request: Request, response: Response) -> dict[str, bool]:
    """End the session at once, in every web process within seconds (Chainlit drops the cookie)."""
    await web_sessions().end(request_token(request.headers))
    return {"success": True}


@cl.set_starters
async def starters(user: cl.User | None = None, language: str | None = None) -> list[cl.Starter]:
    """Commands from the catalog that this person may run at once (no dangerous one), one per agent in a
    fixed order of interest, so a first visit shows what to type: the label says what it does, a click
    sends its example sentence."""
    name = getattr(user, "identifier", None) or LOCAL_USER
    role = await web_auth().current_role(name) or "viewer"
    return [cl.Starter(label=label, message=example) for label, example in starter_examples(role)]


def starter_examples(role: str) -> list[tuple[str, str]]:
    """(label, example sentence): one safe command per agent (memory, reminders, knowledge and system
    first), then help."""
    from agents.system import help_for, template_examples
    from tools.builtin.system import HELP

    listed = help_for(kommandant().services.catalog, role, template_examples())
    first = {"memory": 0, "reminders": 1, "knowledge": 2, "system": 3}
    chosen = []
    for agent in sorted(listed.agents, key=lambda a: (first.get(a.agent, 9), a.agent)):
        safe = [c for c in agent.commands if c.risk != "dangerous" and c.tool != HELP.name]
        if safe:
            chosen.append((_label(safe[0].description), safe[0].example))
    return [*chosen[: MAX_STARTERS - 1], ("Help: what can I say?", "what can I say?")]


def _label(description: str) -> str:
    """A starter's label: the first clause of the tool's description, short."""
    clause = re.split(r"[(:;.]", description, maxsplit=1)[0].strip().rstrip(",")
    return clause if len(clause) <= 40 else clause[:39].rsplit(" ", 1)[0] + "…"


@cl.on_chat_start
async def on_chat_start() -> None:
    identity = await _open_session()
    if identity is None:
        return
    await _tell_page(identity)
    await _show_pending(identity)


@cl.on_chat_resume
async def on_chat_resume(thread: ThreadDict) -> None:
    cl.user_session.set(NAMED_KEY, True)  # a resumed thread has its name
    identity = await _open_session()
    if identity is not None:
        await restore_chips(thread)  # the replies' "Sources:" names open their passages again
        await _tell_page(identity)  # a reloaded page needs it too (footer, time zone)


async def _tell_page(identity: Identity) -> None:
    """The page's notice and whether an LLM is on; the page answers with the browser's time zone."""
    # A banner on the page, not a message: a message would hide the starters of an empty chat.
    notice = AUTO_LOGIN_NOTICE if identity.provider == "auto" else ""
    await cl.send_window_message(
        {"kind": PAGE_MESSAGE, "notice": notice, "llm": bool(runtime().settings.llm_model)}
    )


async def _open_session() -> Identity | None:
    """Check who this is now, set up settings, commands and reminders; None if they may not chat."""
    identity = await _current_identity()
    if identity is None:
        return None
    cl.user_session.set(IDENTITY_KEY, identity)
    settings = runtime().settings
    models = [settings.llm_model, LLM_OFF] if settings.llm_model else [LLM_OFF]
    saved = cl.context.session.chat_settings or {}  # a resumed thread keeps the settings it had
    values = await cl.ChatSettings(
        [
            Select(
                id=LLM_KEY,
                label="LLM model (when no command matches)",
                values=models,
                initial_index=models.index(saved[LLM_KEY]) if saved.get(LLM_KEY) in models else 0,
            ),
            Switch(id=SPEAK_KEY, label="Spoken replies", initial=bool(saved.get(SPEAK_KEY, False))),
        ]
    ).send()
    await on_settings_update(values)
    await cl.context.emitter.set_commands(
        [
            {
                "id": STATUS_COMMAND,
                "description": "Show the agents and their health",
                "icon": "activity",
                "button": True,
                "persistent": False,
                "selected": False,
            },
            {
                "id": APPROVALS_COMMAND,
                "description": "Show approvals waiting for a decision",
                "icon": "shield-check",
                "button": True,
                "persistent": False,
                "selected": False,
            },
        ]
    )
    old = cl.user_session.get("reminders")
    if old is None:
        cl.user_session.set("reminders", asyncio.create_task(deliver_reminders(runtime(), identity.user)))
    if cl.user_session.get("approval_results") is None:
        results = asyncio.create_task(_deliver_approval_results(identity.user))
        cl.user_session.set("approval_results", results)
    if cl.user_session.get("bot_states") is None:
        cl.user_session.set("bot_states", asyncio.create_task(deliver_bot_states(runtime(), identity.user)))
    if cl.user_session.get("decisions") is None:
        cl.user_session.set("decisions", asyncio.create_task(deliver_decisions(runtime())))
    await microphone.announce_voice()  # the page learns whether speech input works here
    return identity


async def _deliver_approval_results(user: str) -> None:
    """Show the result of this person's approved call that ran after they stopped waiting (its turn ended
    or the page closed), in the thread they asked in, when that thread is open here."""
    from agents import approval_result_topic

    services = runtime().services
    assert services is not None
    async with services.bus.subscribe(approval_result_topic(CHANNEL)) as results:
        async for event in results:
            payload = event.payload
            if payload.get("user") != user or payload.get("thread") != cl.context.session.thread_id:
                continue
            outcome = "" if payload.get("ok") else " (it failed)"
            result = without_remote_images(str(payload.get("text", "")))
            await cl.Message(content=f"Approved **{payload.get('tool')}** ran{outcome}: {result}").send()


async def _current_identity() -> Identity | None:
    """The signed-in person with the role their account has now (it may have changed since login)."""
    user = cl.user_session.get("user")
    name = getattr(user, "identifier", None) or LOCAL_USER
    if not await web_sessions().alive(socket_token(cl.context.session)):  # opened before a logout
        cl.user_session.set(IDENTITY_KEY, None)
        await cl.Message(content=SESSION_ENDED).send()
        return None
    role = await web_auth().current_role(name)
    if role is None:
        cl.user_session.set(IDENTITY_KEY, None)
        await cl.Message(content=NOT_ALLOWED.format(user=name)).send()
        return None
    provider = str((getattr(user, "metadata", None) or {}).get("provider", "password"))
    return Identity(name, role, provider)


@cl.on_settings_update
async def on_settings_update(values: dict[str, Any]) -> None:
    cl.user_session.set(SPEAK_KEY, bool(values.get(SPEAK_KEY)))
    model = values.get(LLM_KEY)
    # Turn.llm_model: "" = templates only, None = the configured model, else the model picked.
    cl.user_session.set(LLM_KEY, "" if model == LLM_OFF else (str(model) if model else None))


@cl.on_chat_end
async def on_chat_end() -> None:
    await end_waiting_turns()  # their approvals now count as ones whose requester left
    for key in ("reminders", "approval_results", "bot_states", "decisions"):
        task = cl.user_session.get(key)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@cl.on_message
async def on_message(message: cl.Message) -> None:
    if not turn_gate().admit():  # a stopping server finishes the turns it admitted before it closes
        await cl.Message(content=STOPPING).send()
        return
    identity = await _current_identity()
    if identity is None:
        return
    cl.user_session.set(IDENTITY_KEY, identity)
    first = cl.user_session.get(NAMED_KEY) is None  # this thread's first message (Chainlit names it)
    cl.user_session.set(NAMED_KEY, True)
    if message.command in (STATUS_COMMAND, APPROVALS_COMMAND):  # typed as a command, not clicked
        if first:
            await _name_thread(message.command)
        await _run_panel_command(identity, message.command)
        return
    files = uploaded_files(message)
    if first and files and not (message.content or "").strip():
        await _name_thread("Upload: " + ", ".join(getattr(f, "name", "file") for f in files))
    if files:
        settings = runtime().settings
        await ingest_uploads(
            kommandant(),
            files,
            _turn(identity, "[upload]"),
            max_files=settings.web_upload_max_files,
            max_bytes=settings.ingest_max_file_bytes,
        )
        if not (message.content or "").strip():
            await _show_thread_address()
            return
    await render_turn(runtime(), message)
    await _show_thread_address()


async def _show_thread_address() -> None:
    """The page puts this thread in its address (``/chat/thread/<id>``), so a reload or a link opens it."""
    await cl.send_window_message({"kind": PAGE_MESSAGE, "thread": cl.context.session.thread_id})


async def _name_thread(name: str) -> None:
    """Name a thread whose first message has no words (an upload, a command) after what it did."""
    await chat_history().update_thread(cl.context.session.thread_id, name=name[:200])


async def _run_panel_command(identity: Identity, command: str) -> None:
    """Status in the side panel, or the approvals waiting, each read through its tool."""
    if command == STATUS_COMMAND:
        await _show_status(identity)
    elif not await _show_pending(identity):
        await cl.Message(content="No approvals are waiting.").send()


@cl.on_window_message
async def on_window_message(data: Any) -> None:
    """What ``public/kommandant.js`` reports: a Status or Approvals click (run at once, no message in the
    thread, so no empty thread), and the browser's time zone (for times on approval cards and tables)."""
    if not isinstance(data, dict) or data.get("kind") != CHAT_MESSAGE:
        return  # our own page messages come back here too (the page forwards every window message)
    if isinstance(data.get("timezone"), str):
        cl.user_session.set(TIMEZONE_KEY, data["timezone"][:64])
    command = data.get("command")
    if command in (STATUS_COMMAND, APPROVALS_COMMAND):
        identity = await _current_identity()
        if identity is not None:
            cl.user_session.set(IDENTITY_KEY, identity)
            await _run_panel_command(identity, str(command))


@cl.action_callback(SUGGEST_ACTION)
async def on_suggestion(action: cl.Action) -> None:
    """A suggestion chip of a no-match reply: its sentence is sent as the person's own message."""
    identity = await _current_identity()
    text = str(action.payload.get("text", ""))[:500]
    if identity is None or not text:
        return
    cl.user_session.set(IDENTITY_KEY, identity)
    if not turn_gate().admit():
        await cl.Message(content=STOPPING).send()
        return
    message = cl.Message(content=text, author=identity.user, type="user_message")
    await message.send()
    await render_turn(runtime(), message)


def _turn(identity: Identity, text: str) -> Turn:
    """A turn of this session's person for a button, a command or an upload (same policy and audit)."""
    thread = cl.context.session.thread_id
    return Turn(text=text, user=identity.user, channel=CHANNEL, thread=thread, role=identity.role)


async def _show_pending(identity: Identity) -> int:
    """Approvals waiting in any channel, read through the approvals listing tool and decidable here by
    people who may approve."""
    if not policy.may_approve(identity.role):
        return 0
    turn = _turn(identity, f"/{APPROVALS_COMMAND}")
    try:
        listed = await read_model(kommandant(), approval_tools.LIST, {}, turn, ApprovalList)
    except ToolReadError as err:
        await cl.Message(content=str(err)).send()
        return 0
    return await show_pending_approvals(runtime(), listed.approvals, identity)


async def _show_status(identity: Identity) -> None:
    """Agent status in the side panel, through the status tool (same policy and audit)."""
    turn = _turn(identity, f"/{STATUS_COMMAND}")
    try:
        status = await read_model(kommandant(), system_tools.STATUS, {}, turn, SystemStatus)
    except ToolReadError as err:
        await cl.Message(content=str(err)).send()
        return
    await cl.ElementSidebar.set_title("Agents")
    table = status_table(status, datetime.now(UTC), person_timezone(runtime()))
    await cl.ElementSidebar.set_elements([cl.Text(name="Agent status", content=table)])
    await cl.Message(content=status.summary()).send()


@cl.action_callback(APPROVE_ACTION)
async def on_decide(action: cl.Action) -> None:
    """Approve / Reject on an approval from another channel (or an earlier turn)."""
    identity = session_identity()
    approve = bool(action.payload.get("approve"))
    done = await kommandant().decide(
        str(action.payload.get("id", "")),
        approve=approve,
        user=identity.user,
        role=identity.role,
        channel=CHANNEL,
        thread=cl.context.session.thread_id,
    )
    await action.remove()
    verdict = "Approved" if approve else "Rejected"
    await cl.Message(content=f"{verdict} by **{identity.user}**: {done.text}").send()


from assistant.web import microphone  # noqa: E402  (registers the audio hooks; announce_voice)
