"""One spoken utterance from a live stream: resampling, live partials, end of speech, the final text.

``Listener`` is what a front door (the browser's audio hooks, ``kommandant listen``) feeds with PCM16
chunks at the rate its microphone delivers. Engines follow ``VoiceConfig.stt``: ``whisper`` (final, and
drafts of the growing buffer while speaking: ``partial_due`` / ``draft``), ``vosk`` (partials and final),
``vosk+whisper`` (Vosk partials while speaking, Whisper for the final).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from voice.audio import SAMPLE_RATE, PcmResampler, Samples
from voice.bias import Bias
from voice.config import VoiceConfig
from voice.spoken import normalize_transcript
from voice.streaming import StreamingRecognizer, VoskStreamingRecognizer
from voice.transcriber import Transcriber
from voice.transcript import Partial, Transcript
from voice.vad import Endpointer

__all__ = ["Listener"]

DRAFT_REST = 0.5
"""After a draft, no new one for this fraction of the time it took."""
DRAFT_LEAD_IN = 0.3
"""Seconds of audio before the VAD heard speech that a draft still includes (the VAD hears it late)."""


class Listener:
    """Collects one utterance. ``await feed(chunk)`` returns a new partial or None; ``ended`` says when
    the speaker stopped (VAD) or the length limit was reached; ``await finish()`` gives the transcript."""

    def __init__(
        self,
        config: VoiceConfig,
        transcriber: Transcriber | None,
        *,
        rate: int,
        bias: Bias | None = None,
        streaming: StreamingRecognizer | None = None,
    ) -> None:
        self.config = config
        self.transcriber = transcriber
        self.bias = bias
        self._resampler = PcmResampler(rate)
        self._endpointer = Endpointer(silence_ms=config.vad_silence_ms, threshold=config.vad_threshold)
        if streaming is None and config.stt in ("vosk", "vosk+whisper"):
            streaming = VoskStreamingRecognizer(config, bias=bias)
        self._streaming = streaming
        self._chunks: list[Samples] = []
        self._samples = 0
        self.too_long = False
        self._drafting = False
        self._speech_from: int | None = None  # sample where speech began (with a little lead-in)
        self._drafted_at = 0.0  # seconds of audio the last draft covered
        self._next_draft = 0.0  # monotonic time before which no new draft starts
        self._last_draft = ""

    @property
    def ended(self) -> bool:
        """The utterance is over: speech then silence, or ``max_seconds`` of audio."""
        return self._endpointer.ended or self.too_long

    @property
    def heard_speech(self) -> bool:
        """The VAD heard speech at some point."""
        return self._endpointer.speech

    @property
    def seconds(self) -> float:
        """Audio received so far."""
        return self._samples / SAMPLE_RATE

    async def feed(self, pcm: bytes) -> Partial | None:
        """Take a PCM16 chunk; return the live partial text when it changed."""
        return await asyncio.to_thread(self.feed_sync, pcm)

    def feed_sync(self, pcm: bytes) -> Partial | None:
        """``feed`` without the thread (callers already in a worker thread)."""
        if self.ended:
            return None
        samples = self._resampler.feed(pcm)
        return self._take(samples)

    def _take(self, samples: Samples) -> Partial | None:
        self._chunks.append(samples)
        self._samples += len(samples)
        if self.seconds >= self.config.max_seconds:
            self.too_long = True
        self._endpointer.feed(samples)
        if self._speech_from is None and self._endpointer.speech:
            self._speech_from = max(0, self._samples - len(samples) - int(DRAFT_LEAD_IN * SAMPLE_RATE))
            self._drafted_at = self._speech_from / SAMPLE_RATE
        if self._streaming is not None:
            return self._streaming.accept(samples)
        return None

    def _drafter(self) -> Callable[..., Any] | None:
        """Whisper's quick draft, where no streaming recogniser gives partials."""
        if self._streaming is not None or self.config.partial_every <= 0:
            return None
        return getattr(self.transcriber, "partial_sync", None)

    def partial_due(self) -> bool:
        """A draft of the words so far is worth making now: speech was heard, the utterance goes on, no
        draft is running, ``partial_every`` seconds of new audio came in (the first draft after that much
        speech), and the machine rested ``DRAFT_REST`` times as long as the last draft took: drafts never
        take more than two thirds of the machine, and on a busy one they thin out instead of starving
        the final text and other people's turns."""
        return (
            self._drafter() is not None
            and self.heard_speech
            and not self.ended
            and not self._drafting
            and self.seconds - self._drafted_at >= self.config.partial_every
            and time.monotonic() >= self._next_draft
        )

    async def draft(self) -> Partial | None:
        """Whisper on everything heard so far (in a thread): the partial text when it changed, else None.
        The caller checks ``partial_due`` first. A draft may finish after the utterance ended: it still
        shows the words so far until the final transcript is there (the caller knows when that is)."""
        drafter = self._drafter()
        if drafter is None or self._drafting:
            return None
        self._drafting = True
        self._drafted_at = self.seconds
        started = time.monotonic()
        try:
            # From just before the speech began: the silence before it only invites Whisper to invent.
            text = await asyncio.to_thread(drafter, self.audio()[self._speech_from or 0 :], bias=self.bias)
        finally:
            self._next_draft = time.monotonic() + DRAFT_REST * (time.monotonic() - started)
            self._drafting = False
        text = normalize_transcript(text)
        if not text or text == self._last_draft:
            return None
        self._last_draft = text
        return Partial(text)

    def audio(self) -> Samples:
        """Everything heard so far, at 16 kHz."""
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.float32)

    async def finish(self) -> Transcript:
        """The final transcript: Whisper on the whole utterance when configured, else Vosk's final."""
        rest = self._resampler.flush()
        if len(rest):
            self._take(rest)
        if self.transcriber is not None and self.config.stt != "vosk":
            return await self.transcriber.transcribe(self.audio(), bias=self.bias)
        if self._streaming is not None:
            return await asyncio.to_thread(self._streaming.finish)
        if self.transcriber is not None:
            return await self.transcriber.transcribe(self.audio(), bias=self.bias)
        return Transcript(text="", duration=self.seconds)
