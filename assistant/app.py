"""The Chainlit web chat. Every message goes through ``Kommandant.handle``; this module only renders events.

Chainlit loads this file by path, so it reaches the running services through ``assistant.web.runtime()``.
"""

from __future__ import annotations

import chainlit as cl

from assistant.web import runtime


@cl.on_chat_start
async def on_chat_start() -> None:
    cl.user_session.set("thread", cl.context.session.thread_id)


@cl.on_message
async def on_message(message: cl.Message) -> None:
    from assistant.render_chainlit import render_turn

    await render_turn(runtime(), message)
