"""Spoken replies in the browser: ONE audio stream per reply, its sentences one after the other.

With the microphone on, the sentences stream over Chainlit's audio channel as one track (the page's
player queues a track's chunks, so they never overlap). Otherwise the sentences are joined (with a short
pause between them) into one auto-playing audio element. ``public/voice.js`` plays those elements one at
a time, in order, and shows a "Stop speaking" button while one plays.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import chainlit as cl
import numpy as np

from assistant.speech import VoiceTurns
from assistant.web.server import runtime
from voice import Samples, Speech, VoiceError, create_synthesizer, resample, speak_sentences, wav_bytes
from voice.audio import to_pcm16

log = logging.getLogger(__name__)

LIVE_KEY = "voice_live"
"""User-session flag: the microphone is on (replies stream over the audio channel)."""
DEFAULT_RATE = 24_000
OUTPUT_CHUNK_SECONDS = 0.5
SENTENCE_PAUSE = 0.25
"""Seconds of silence between two sentences of one spoken reply."""
AUDIO_NAME = "Spoken reply"

_voices: dict[int, VoiceTurns] = {}


def voice_turns() -> VoiceTurns:
    """The process's speech front door over the web runtime (models are shared by every session)."""
    rt = runtime()
    voice = _voices.get(id(rt))
    if voice is None:
        _voices.clear()
        assert rt.kommandant is not None
        voice = _voices[id(rt)] = VoiceTurns(rt.settings, rt.kommandant)
    return voice


def sample_rate() -> int:
    """The browser's audio sample rate (``[features.audio] sample_rate``)."""
    from chainlit.config import config

    return int(getattr(config.features.audio, "sample_rate", DEFAULT_RATE) or DEFAULT_RATE)


async def speak_reply(text: str) -> None:
    """Speak ``text`` in the browser as one stream (see the module docstring). Piper makes a sentence in
    about 0.1 s, so the joined element is ready moments after the reply; with the microphone on the first
    sentence plays while the rest is made."""
    voice = voice_turns()
    try:
        synthesizer = await asyncio.to_thread(create_synthesizer, voice.config)
    except VoiceError as err:
        log.warning("no voice to speak with: %s", err)
        return
    if synthesizer is None:
        return
    if cl.user_session.get(LIVE_KEY):
        await _stream_live(speak_sentences(synthesizer, text))
        return
    parts: list[Samples] = []
    rate = 0
    async for speech in speak_sentences(synthesizer, text):
        samples = (
            speech.samples if not rate or speech.rate == rate else resample(speech.samples, speech.rate, rate)
        )
        rate = rate or speech.rate
        if parts:
            parts.append(np.zeros(int(rate * SENTENCE_PAUSE), dtype=np.float32))
        parts.append(samples)
    if not parts:
        return
    audio = cl.Audio(
        name=AUDIO_NAME, content=wav_bytes(np.concatenate(parts), rate), mime="audio/wav", auto_play=True
    )
    await cl.Message(content="", elements=[audio]).send()


async def _stream_live(speeches: AsyncIterator[Speech]) -> None:
    """Every sentence on one track of Chainlit's audio channel, at the page's sample rate."""
    track = str(uuid.uuid4())
    rate = sample_rate()
    step = int(rate * OUTPUT_CHUNK_SECONDS) * 2
    async for speech in speeches:
        pcm = to_pcm16(resample(speech.samples, speech.rate, rate))
        for start in range(0, len(pcm), step):
            chunk: Any = {"track": track, "mimeType": "pcm16", "data": pcm[start : start + step]}
            await cl.context.emitter.send_audio_chunk(chunk)
