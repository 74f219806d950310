"""Voice in the web chat: audio hooks -> live partial transcript -> the normal turn -> a spoken reply.

The browser streams PCM16 at ``[features.audio] sample_rate`` (24 kHz). Each chunk goes to a
``voice.Listener``: Vosk partials (with ``KOMMANDANT_STT=vosk+whisper``) show live while the person
speaks, Silero VAD ends the utterance, and the final transcript goes through the spoken entrance
(``render_spoken``): shown as the person's message, then run and shown like typed text. The microphone
stays open: the next utterance starts at once.
Spoken replies (the "Spoken replies" switch, ``speak_replies``) stream sentence by sentence.
"""

from __future__ import annotations

import asyncio
import logging

import chainlit as cl

from assistant.web.render import IDENTITY_KEY, render_spoken, session_identity
from assistant.web.server import runtime
from assistant.web.speak import LIVE_KEY, sample_rate, voice_turns
from voice import Listener, VoiceError

log = logging.getLogger(__name__)

LISTENER_KEY = "voice_listener"
PARTIAL_KEY = "voice_partial"
LOCK_KEY = "voice_lock"
CHAT_START_WAIT = 15.0
"""Seconds the microphone waits for the chat start to sign the session in (see ``_chat_started``)."""
CHAT_START_POLL = 0.05

_turns: set[asyncio.Task[None]] = set()
"""Utterances being answered while the microphone keeps listening (held so they are not collected)."""


async def _new_listener() -> Listener:
    listener = await voice_turns().listener(rate=sample_rate(), user=session_identity().user)
    cl.user_session.set(LISTENER_KEY, listener)
    cl.user_session.set(PARTIAL_KEY, None)
    return listener


@cl.on_audio_start
async def on_audio_start() -> bool:
    """The microphone button was pressed: prepare a listener (a clear message if no model is there).

    The lock is in place before the first await: chunks that arrive while the listener (and on first use
    the model) loads wait for it instead of being dropped, which cut off the first word of a command.
    """
    lock = asyncio.Lock()
    cl.user_session.set(LOCK_KEY, lock)
    async with lock:
        try:
            await _chat_started()
            await _new_listener()
        except (VoiceError, PermissionError) as err:
            cl.user_session.set(LOCK_KEY, None)
            await cl.ErrorMessage(content=str(err)).send()
            return False
    cl.user_session.set(LIVE_KEY, True)
    return True


async def _chat_started() -> None:
    """Wait until the chat start has put the signed-in person into the session (``on_chat_start`` or
    ``on_chat_resume`` in ``app.py``, which check the login in Postgres first). The button shows with
    the page, and Socket.IO handles the socket's first events side by side: a quick click reached this
    hook before the chat start had even begun, and was answered "no signed-in person"."""
    session = cl.context.session
    deadline = asyncio.get_running_loop().time() + CHAT_START_WAIT
    while cl.user_session.get(IDENTITY_KEY) is None:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            return
        task = session.current_task
        if session.chat_started and (task is None or task.done()):
            return  # the chat start is over and signed nobody in: session_identity() says so
        if task is not None and not task.done():
            await asyncio.wait({task}, timeout=left)
        else:
            await asyncio.sleep(CHAT_START_POLL)


@cl.on_audio_chunk
async def on_audio_chunk(chunk: cl.InputAudioChunk) -> None:
    """Feed the chunk; show the partial text; when the VAD hears the end, run the utterance as a turn."""
    lock: asyncio.Lock | None = cl.user_session.get(LOCK_KEY)
    if lock is None:
        return
    async with lock:
        listener: Listener | None = cl.user_session.get(LISTENER_KEY)
        if listener is None:
            return
        try:
            partial = await listener.feed(chunk.data)
        except VoiceError as err:
            cl.user_session.set(LISTENER_KEY, None)
            await cl.ErrorMessage(content=str(err)).send()
            return
        if partial is not None and partial.text:
            await _show_partial(partial.text)
        if listener.ended:
            await _new_listener()
            task = asyncio.create_task(_run_utterance(listener))
            _turns.add(task)
            task.add_done_callback(_turns.discard)


@cl.on_audio_end
async def on_audio_end() -> None:
    """The microphone was switched off: whatever was said since the last turn is one more utterance."""
    cl.user_session.set(LIVE_KEY, False)
    listener: Listener | None = cl.user_session.get(LISTENER_KEY)
    cl.user_session.set(LISTENER_KEY, None)
    if listener is not None and listener.heard_speech:
        await _run_utterance(listener)
    else:
        await _drop_partial()


async def _show_partial(text: str) -> None:
    message: cl.Message | None = cl.user_session.get(PARTIAL_KEY)
    if message is None:
        message = cl.Message(content=f"🎙️ {text} …", author="speaking")
        cl.user_session.set(PARTIAL_KEY, message)
        await message.send()
    else:
        message.content = f"🎙️ {text} …"
        await message.update()


async def _drop_partial() -> None:
    message: cl.Message | None = cl.user_session.get(PARTIAL_KEY)
    cl.user_session.set(PARTIAL_KEY, None)
    if message is not None:
        await message.remove()


async def _run_utterance(listener: Listener) -> None:
    """Final transcript -> the spoken entrance (shown as the person's message, then the turn) -> spoken
    reply if enabled."""
    try:
        transcript = await listener.finish()
    except VoiceError as err:
        await cl.ErrorMessage(content=str(err)).send()
        return
    await _drop_partial()
    await render_spoken(runtime(), transcript)
