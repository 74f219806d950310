"""The Chainlit web chat. Every message goes through ``Kommandant.handle``; this module only renders events.

Chainlit loads this file by path, so it reaches the running services through ``assistant.web.runtime()``.
"""

from __future__ import annotations

import asyncio
import contextlib

import chainlit as cl

from assistant.render_chainlit import deliver_reminders, render_turn
from assistant.web import runtime


@cl.on_chat_start
async def on_chat_start() -> None:
    user = cl.user_session.get("user")
    name = getattr(user, "identifier", None) or "local"
    cl.user_session.set("reminders", asyncio.create_task(deliver_reminders(runtime(), name)))


@cl.on_chat_end
async def on_chat_end() -> None:
    task = cl.user_session.get("reminders")
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@cl.on_message
async def on_message(message: cl.Message) -> None:
    await render_turn(runtime(), message)
