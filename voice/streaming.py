"""Streaming recognition: PCM chunks in, growing partial text out, a final transcript at the end (Vosk)."""

from __future__ import annotations

import json
import time
from typing import Protocol

from voice import models
from voice.audio import Samples, to_pcm16
from voice.bias import Bias
from voice.config import VoiceConfig
from voice.transcriber import new_vosk_recognizer, vosk_transcript
from voice.transcript import Partial, Transcript

__all__ = ["StreamingRecognizer", "VoskStreamingRecognizer"]


class StreamingRecognizer(Protocol):
    """One utterance, fed as it is spoken. Blocking calls: run them in a thread from async code."""

    def accept(self, samples: Samples) -> Partial | None:
        """Take 16 kHz audio; return the partial text when it changed, else None."""
        ...

    def finish(self) -> Transcript:
        """The final transcript of everything accepted."""
        ...


class VoskStreamingRecognizer:
    """Vosk's Kaldi recogniser; with a bias it runs in command mode (a grammar of the allowed words)."""

    def __init__(self, config: VoiceConfig, *, bias: Bias | None = None) -> None:
        self._recognizer = new_vosk_recognizer(models.vosk_model(config), bias if config.bias else None)
        self._last = ""
        self._done: list[str] = []
        self._words: list[dict[str, object]] = []
        self._samples = 0
        self._elapsed = 0.0

    def accept(self, samples: Samples) -> Partial | None:
        """Take 16 kHz audio; return the partial text when it changed, else None."""
        started = time.perf_counter()
        self._samples += len(samples)
        if self._recognizer.AcceptWaveform(to_pcm16(samples)):
            # Vosk closed a segment at a pause: keep its words, the utterance goes on.
            result = json.loads(self._recognizer.Result())
            self._words.extend(result.get("result", []))
            if result.get("text"):
                self._done.append(result["text"])
            text = " ".join(self._done)
        else:
            partial = json.loads(self._recognizer.PartialResult()).get("partial", "")
            text = " ".join([*self._done, partial]).strip()
        self._elapsed += time.perf_counter() - started
        text = text.replace("[unk]", "").strip()
        if text == self._last:
            return None
        self._last = text
        return Partial(text)

    def finish(self) -> Transcript:
        """The final transcript of everything accepted."""
        started = time.perf_counter()
        result = json.loads(self._recognizer.FinalResult())
        self._elapsed += time.perf_counter() - started
        words = [*self._words, *result.get("result", [])]
        return vosk_transcript({"result": words}, self._samples / 16_000, self._elapsed)
