"""Voice turns: audio -> transcript (biased toward the commands and the live names) -> ``Kommandant.handle``.

Shared by every front door that hears speech (``kommandant ask --audio``, ``kommandant listen``, the web
chat's microphone), so none of them re-implements transcription, normalisation or confidence handling.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.events import Event, Failed, Heard, ReplyDone, Role, Turn
from settings import Settings
from telemetry.metrics import transcription_timer
from voice import (
    AudioError,
    Bias,
    Listener,
    Samples,
    Transcriber,
    Transcript,
    VoiceConfig,
    decode_file,
    normalize_transcript,
    template_vocabulary,
)
from voice.hypotheses import Rank, Understanding, choose_reading, meaning_of

if TYPE_CHECKING:
    from assistant.kommandant import Kommandant

__all__ = ["Heard", "VoiceTurns", "voice_config"]


def voice_config(settings: Settings) -> VoiceConfig:
    """The voice package's settings, from the one ``Settings`` object."""
    return VoiceConfig(
        stt=settings.stt,
        whisper_model=settings.whisper_model,
        whisper_device=settings.whisper_device,
        whisper_compute_type=settings.whisper_compute_type,
        whisper_beam_size=settings.whisper_beam_size,
        threads=settings.stt_threads,
        vosk_model=settings.vosk_model,
        vad_silence_ms=settings.vad_silence_ms,
        vad_threshold=settings.vad_threshold,
        bias=settings.speech_bias,
        max_seconds=settings.max_voice_seconds,
        tts=settings.tts,
        piper_voice=settings.piper_voice,
        models_dir=settings.data_dir / "models",
    )


@lru_cache(maxsize=1)
def _template_vocabulary() -> tuple[str, ...]:
    """The commands' vocabulary (read once per process)."""
    from intents import load_templates

    return template_vocabulary(load_templates())


class VoiceTurns:
    """Speech front door over a running Kommandant: transcribe, then run the normal turn."""

    def __init__(self, settings: Settings, kommandant: Kommandant) -> None:
        self.settings = settings
        self.config = voice_config(settings)
        self.kommandant = kommandant
        self._transcriber: Transcriber | None = None
        self._lock = asyncio.Lock()

    async def transcriber(self) -> Transcriber:
        """The configured whole-utterance engine, loaded (in a thread) on first use."""
        async with self._lock:
            if self._transcriber is None:
                self._transcriber = await asyncio.to_thread(create_transcriber, self.config)
            return self._transcriber

    async def bias(self, user: str) -> Bias | None:
        """The commands' words and this user's live names (bots and schedules; reminders for Vosk)."""
        if not self.config.bias:
            return None
        from storage.lists import live_names

        names = await live_names(self.kommandant.services.database.sessionmaker, user)
        # Reminder texts are sentences, not names: as a Whisper prompt they invite the model to say them
        # again, so they only widen Vosk's vocabulary.
        return Bias(
            names=(*names.bots, *names.schedules), vocabulary=(*_template_vocabulary(), *names.reminders)
        )

    async def decode(self, path: Path) -> Samples:
        """Decode an audio file (any common format) in a thread; refuse recordings too long for a command."""
        samples = await asyncio.to_thread(decode_file, path)
        seconds = len(samples) / 16_000
        if seconds > self.config.max_seconds:
            raise AudioError(
                f"{path.name} is {_clock(seconds)} long; a voice command may be at most "
                f"{_clock(self.config.max_seconds)} (KOMMANDANT_MAX_VOICE_SECONDS). "
                "For long recordings use `kommandant transcribe`."
            )
        return samples

    async def transcribe(self, samples: Samples, *, user: str) -> Transcript:
        """The transcript of one utterance, biased toward what this user can say."""
        engine, bias = await self.transcriber(), await self.bias(user)
        with transcription_timer("vosk" if self.config.stt == "vosk" else "whisper"):  # create_transcriber's
            return await engine.transcribe(samples, bias=bias)

    async def listener(self, *, rate: int, user: str) -> Listener:
        """A live-stream collector for one utterance from a microphone delivering PCM16 at ``rate``."""
        engine = await self.transcriber() if self.config.stt != "vosk" else None
        bias = await self.bias(user)
        return await asyncio.to_thread(Listener, self.config, engine, rate=rate, bias=bias)

    async def handle(
        self,
        transcript: Transcript,
        *,
        user: str,
        role: Role,
        channel: str,
        thread: str | None = None,
        llm_model: str | None = None,
    ) -> AsyncIterator[Heard | Event]:
        """The spoken entrance: ``Heard`` first, then the turn's events (with the read-back of an unsure
        command and approvals, as for typed text); a clear reply when no speech was heard."""
        likeliest = transcript.text
        transcript = await choose_reading(
            transcript,
            lambda reading: self.understand(reading, user=user, role=role, channel=channel, thread=thread),
        )
        # A command from a reading Whisper found less likely than another is never acted on unasked: a
        # write is read back first, whatever the confidence in its own words.
        confidence = transcript.confidence if transcript.text == likeliest else 0.0
        text = normalize_transcript(transcript.text)
        yield Heard(transcript, text)
        if not text:
            message = "I didn't hear anything I could make out; please say it again, a little closer."
            yield Failed(message)
            yield ReplyDone(message)
            return
        turn = Turn(
            text=text,
            user=user,
            channel=channel,
            thread=thread,
            role=role,
            speech_confidence=confidence,
            llm_model=llm_model,
        )
        async for event in self.kommandant.handle(turn):
            yield event

    async def understand(
        self, text: str, *, user: str, role: Role, channel: str, thread: str | None = None
    ) -> Understanding:
        """What this turn would make of one reading of the speech (for ``choose_reading``): commands in the
        words as heard, commands only a correction reaches, or none."""
        turn = Turn(text=text, user=user, channel=channel, thread=thread, role=role)
        matches = await self.kommandant.recognize(turn)
        rank = Rank.HEARD
        if not matches:
            matches = await self.kommandant.recognize(replace(turn, speech_confidence=1.0))
            rank = Rank.CORRECTED if matches else Rank.NONE
        return Understanding(rank, meaning_of((m.tool, m.arguments) for m in matches))

    async def handle_audio(
        self,
        samples: Samples,
        *,
        user: str,
        role: Role,
        channel: str,
        thread: str | None = None,
        llm_model: str | None = None,
    ) -> AsyncIterator[Heard | Event]:
        """A whole voice turn from audio: transcribe (biased toward this user's names), then ``handle``."""
        started = time.perf_counter()
        transcript = await self.transcribe(samples, user=user)
        transcript.timings["heard"] = time.perf_counter() - started
        async for event in self.handle(
            transcript, user=user, role=role, channel=channel, thread=thread, llm_model=llm_model
        ):
            yield event


def create_transcriber(config: VoiceConfig) -> Transcriber:
    """The final-text engine of ``config.stt``: Whisper, or Vosk for ``stt=vosk``."""
    from voice import VoskTranscriber, WhisperTranscriber

    if config.stt == "vosk":
        return VoskTranscriber(config)
    return WhisperTranscriber(config)


def _clock(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}:{rest:02d}" if minutes else f"{rest} s"
