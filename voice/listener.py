"""One spoken utterance from a live stream: resampling, live partials, end of speech, the final text.

``Listener`` is what a front door (the browser's audio hooks, ``kommandant listen``) feeds with PCM16
chunks at the rate its microphone delivers. Engines follow ``VoiceConfig.stt``: ``whisper`` (final only),
``vosk`` (partials and final), ``vosk+whisper`` (Vosk partials while speaking, Whisper for the final).
"""

from __future__ import annotations

import asyncio

import numpy as np

from voice.audio import SAMPLE_RATE, PcmResampler, Samples
from voice.bias import Bias
from voice.config import VoiceConfig
from voice.streaming import StreamingRecognizer, VoskStreamingRecognizer
from voice.transcriber import Transcriber
from voice.transcript import Partial, Transcript
from voice.vad import Endpointer

__all__ = ["Listener"]


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
        if self._streaming is not None:
            return self._streaming.accept(samples)
        return None

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
