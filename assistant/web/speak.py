"""Spoken replies in the browser: the reply is synthesised sentence by sentence and streamed (with the
microphone on) over Chainlit's audio channel, or sent as auto-playing audio elements."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import chainlit as cl

from assistant.speech import VoiceTurns
from assistant.web.server import runtime
from voice import VoiceError, create_synthesizer, resample, speak_sentences
from voice.audio import to_pcm16

log = logging.getLogger(__name__)

LIVE_KEY = "voice_live"
"""User-session flag: the microphone is on (replies stream over the audio channel)."""
DEFAULT_RATE = 24_000
OUTPUT_CHUNK_SECONDS = 0.5

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
    rate = sample_rate()
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
