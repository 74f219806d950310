"""Voice in the web chat: audio hooks -> live partial transcript -> the normal turn -> a spoken reply.

The browser streams PCM16 at ``[features.audio] sample_rate`` (24 kHz). Each chunk goes to a
``voice.Listener``: the words so far show live while the person speaks (Vosk partials with
``KOMMANDANT_STT=vosk+whisper``, else throttled Whisper drafts of the growing buffer), Silero VAD ends
the utterance, and the final transcript goes through the spoken entrance (``render_spoken``): shown as
the person's message, then run and shown like typed text. The microphone stays open: the next utterance
starts at once.

Errors never leave the microphone stuck: whatever fails (no model, a broken one, a failed transcript)
shows its sentence and turns the microphone off (``_reset``), so the next click tries again; a model put
in place meanwhile is found without a reload. ``announce_voice`` tells the page at chat start whether
speech input can work here (``public/voice.js`` shows how to enable it, once).
Spoken replies (the "Spoken replies" switch, ``speak_replies``): ``assistant.web.speak``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Coroutine
from typing import Any

import chainlit as cl

from assistant.web.render import IDENTITY_KEY, render_spoken, session_identity
from assistant.web.server import runtime
from assistant.web.speak import LIVE_KEY, sample_rate, voice_turns
from voice import Listener, VoiceError
from voice.models import speech_missing

log = logging.getLogger(__name__)

LISTENER_KEY = "voice_listener"
PARTIAL_KEY = "voice_partial"
LOCK_KEY = "voice_lock"
REFUSED_KEY = "voice_refused"
"""The microphone could not start: switch the page's microphone off at its first chunk."""
CHAT_START_WAIT = 15.0
"""Seconds the microphone waits for the chat start to sign the session in (see ``_chat_started``)."""
CHAT_START_POLL = 0.05
WINDOW_MESSAGE = "kommandant.voice"
"""The ``kind`` of the window message that tells ``public/voice.js`` whether speech input can work."""

_finished: weakref.WeakSet[Listener] = weakref.WeakSet()
"""Utterances whose final transcript is out: their late drafts are not shown."""
_turns: set[asyncio.Task[None]] = set()
"""Utterances being answered while the microphone keeps listening (held so they are not collected)."""


async def _new_listener() -> Listener:
    listener = await voice_turns().listener(rate=sample_rate(), user=session_identity().user)
    cl.user_session.set(LISTENER_KEY, listener)
    cl.user_session.set(PARTIAL_KEY, None)
    return listener


async def announce_voice() -> None:
    """Tell the page whether speech input can work here, and if not, how to enable it (the page says
    so once, beside the microphone). Checked again at every click: a model put in place later counts."""
    missing = await asyncio.to_thread(speech_missing, voice_turns().config)
    await cl.send_window_message(
        {"kind": WINDOW_MESSAGE, "available": missing is None, "hint": missing or ""}
    )


@cl.on_audio_start
async def on_audio_start() -> bool:
    """The microphone button was pressed: prepare a listener (a clear message if no model is there).

    The lock is in place before the first await: chunks that arrive while the listener (and on first use
    the model) loads wait for it instead of being dropped, which cut off the first word of a command.

    Any failure shows its sentence, and the microphone is switched off once the page has started it.
    Answering False would be simpler, but Chainlit's page then stops a recorder it never began, which
    throws and leaves the button spinning until a reload; so the answer is True and the first chunk
    turns it off (``REFUSED_KEY``), through the page's ordinary way of stopping.
    """
    lock = asyncio.Lock()
    cl.user_session.set(LOCK_KEY, lock)
    async with lock:
        try:
            await _chat_started()
            missing = await asyncio.to_thread(speech_missing, voice_turns().config)
            if missing is not None:
                raise VoiceError(missing)  # before loading: a named model would be fetched from the internet
            await _new_listener()
        except (VoiceError, PermissionError) as err:
            await _refuse(str(err))
            return True
        except Exception:
            log.exception("the microphone could not start")
            await _refuse("The microphone could not start; see the server log. Click it to try again.")
            return True
    cl.user_session.set(LIVE_KEY, True)
    return True


async def _refuse(error: str) -> None:
    await _clear(error)
    cl.user_session.set(REFUSED_KEY, True)


async def _clear(error: str | None) -> None:
    """Forget the microphone's state and show ``error`` (the microphone is, or will be, off)."""
    cl.user_session.set(LOCK_KEY, None)
    cl.user_session.set(LISTENER_KEY, None)
    cl.user_session.set(LIVE_KEY, False)
    await _drop_partial()
    if error:
        await cl.ErrorMessage(content=error).send()


async def _reset(error: str) -> None:
    """An error while recording: say what went wrong and switch the page's microphone off, so it is not
    left recording into nothing (the next click starts afresh)."""
    await _clear(error)
    await cl.context.emitter.update_audio_connection("off")


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
    if cl.user_session.get(REFUSED_KEY):
        cl.user_session.set(REFUSED_KEY, False)
        await cl.context.emitter.update_audio_connection("off")  # the page now stops what it began
        return
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
            await _reset(str(err))
            return
        except Exception:
            log.exception("could not take the microphone's audio")
            await _reset(
                "The microphone's audio could not be used; see the server log. Click it to try again."
            )
            return
        if partial is not None and partial.text:
            await _show_partial(partial.text)
        if listener.ended:
            await _new_listener()
            _keep(_run_utterance(listener))
        elif listener.partial_due():
            _keep(_draft(listener, lock))


def _keep(coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro`` beside the microphone (it keeps listening), holding the task until it is done."""
    task = asyncio.create_task(coro)
    _turns.add(task)
    task.add_done_callback(_turns.discard)


async def _draft(listener: Listener, lock: asyncio.Lock) -> None:
    """A Whisper draft of the words so far, shown while this utterance is still the one being heard."""
    try:
        partial = await listener.draft()
    except Exception:  # a draft is a nicety: the final transcript still comes
        log.warning("a live draft of the speech failed", exc_info=True)
        return
    if partial is None:
        return
    async with lock:
        if listener not in _finished:  # until the final transcript replaces it
            await _show_partial(partial.text)


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
        await _reset(str(err))
        return
    except Exception:
        log.exception("could not transcribe the utterance")
        await _reset(
            "What you said could not be transcribed; see the server log. Click the microphone to try again."
        )
        return
    lock: asyncio.Lock | None = cl.user_session.get(LOCK_KEY)
    async with lock or contextlib.nullcontext():
        _finished.add(listener)  # a draft still running now is never shown
        await _drop_partial()
    await render_spoken(runtime(), transcript)
