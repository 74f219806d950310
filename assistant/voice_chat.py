"""Voice in the web chat: audio hooks -> live partial transcript -> the normal turn -> a spoken reply.

The browser streams PCM16 at ``[features.audio] sample_rate`` (24 kHz). Each chunk goes to a
``voice.Listener``: Vosk partials (with ``KOMMANDANT_STT=vosk+whisper``) show live while the person
speaks, Silero VAD ends the utterance, and the final transcript is shown as the person's message and run
through ``render_turn`` like typed text. The microphone stays open: the next utterance starts at once.
Spoken replies (the "Spoken replies" switch, ``speak_replies``) stream sentence by sentence.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import chainlit as cl

from assistant.render_chainlit import SPEAK_KEY, render_turn, session_identity
from assistant.speech import VoiceTurns
from assistant.web import runtime
from voice import Listener, VoiceError, create_synthesizer, normalize_transcript, resample, speak_sentences
from voice.audio import to_pcm16

log = logging.getLogger(__name__)

LISTENER_KEY = "voice_listener"
PARTIAL_KEY = "voice_partial"
LOCK_KEY = "voice_lock"
LIVE_KEY = "voice_live"
DEFAULT_RATE = 24_000
OUTPUT_CHUNK_SECONDS = 0.5

_voices: dict[int, VoiceTurns] = {}
_turns: set[asyncio.Task[None]] = set()
"""Utterances being answered while the microphone keeps listening (held so they are not collected)."""


def voice_turns() -> VoiceTurns:
    """The process's speech front door over the web runtime (models are shared by every session)."""
    rt = runtime()
    voice = _voices.get(id(rt))
    if voice is None:
        _voices.clear()
        voice = _voices[id(rt)] = VoiceTurns(rt.settings, rt.kommandant)
    return voice


def _rate() -> int:
    from chainlit.config import config

    return int(getattr(config.features.audio, "sample_rate", DEFAULT_RATE) or DEFAULT_RATE)


async def _new_listener() -> Listener:
    listener = await voice_turns().listener(rate=_rate(), user=session_identity().user)
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
            await _new_listener()
        except VoiceError as err:
            cl.user_session.set(LOCK_KEY, None)
            await cl.ErrorMessage(content=str(err)).send()
            return False
    cl.user_session.set(LIVE_KEY, True)
    return True


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
    """Final transcript -> shown as the person's message -> the normal turn -> spoken reply if enabled."""
    try:
        transcript = await listener.finish()
    except VoiceError as err:
        await cl.ErrorMessage(content=str(err)).send()
        return
    await _drop_partial()
    text = normalize_transcript(transcript.text)
    if not text:
        await cl.Message(content="I didn't hear anything I could make out; please say it again.").send()
        return
    await cl.Message(content=text, author=session_identity().user, type="user_message").send()
    reply = await render_turn(runtime(), text, speech_confidence=transcript.confidence)
    if reply and cl.user_session.get(SPEAK_KEY):
        await speak_reply(reply)


async def speak_reply(text: str) -> None:
    """Speak ``text`` in the browser, sentence by sentence (the first plays while the rest is made).

    With the microphone on, audio streams over Chainlit's audio channel at its sample rate; otherwise
    each sentence arrives as an auto-playing audio element.
    """
    voice = voice_turns()
    try:
        synthesizer = await asyncio.to_thread(create_synthesizer, voice.config)
    except VoiceError as err:
        log.warning("no voice to speak with: %s", err)
        return
    if synthesizer is None:
        return
    live = bool(cl.user_session.get(LIVE_KEY))
    track = str(uuid.uuid4())
    rate = _rate()
    async for speech in speak_sentences(synthesizer, text):
        if live:
            pcm = to_pcm16(resample(speech.samples, speech.rate, rate))
            step = int(rate * OUTPUT_CHUNK_SECONDS) * 2
            for start in range(0, len(pcm), step):
                chunk: Any = {"track": track, "mimeType": "pcm16", "data": pcm[start : start + step]}
                await cl.context.emitter.send_audio_chunk(chunk)
        else:
            from voice import wav_bytes

            audio = cl.Audio(content=wav_bytes(speech.samples, speech.rate), mime="audio/wav", auto_play=True)
            await cl.Message(content="", elements=[audio]).send()
