"""Voice activity detection that ends an utterance: Silero VAD (the model faster-whisper ships).

The model is run frame by frame (512 samples, 32 ms) with its recurrent state carried across chunks,
so a live stream costs a fraction of a millisecond per frame and needs no look-ahead.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from voice.audio import SAMPLE_RATE, Samples

__all__ = ["FRAME", "Endpointer"]

FRAME = 512
"""Samples per VAD frame at 16 kHz (what Silero expects)."""
_CONTEXT = 64
_MIN_SPEECH_FRAMES = 3
"""About 100 ms above the threshold counts as speech (a click or a cough does not)."""


class Endpointer:
    """Feed 16 kHz audio; ``ended`` turns true after speech followed by ``silence_ms`` of silence."""

    def __init__(self, *, silence_ms: int = 700, threshold: float = 0.5) -> None:
        from faster_whisper.vad import get_vad_model

        self._session: Any = get_vad_model().session
        self.threshold = threshold
        self._silence_frames_needed = max(1, round(silence_ms / 1000 * SAMPLE_RATE / FRAME))
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros((1, _CONTEXT), dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self._speech_run = 0
        self._silence_run = 0
        self.speech = False
        """Speech has started."""
        self.ended = False
        """Speech started and was followed by enough silence."""
        self.speech_frames = 0

    def feed(self, samples: Samples) -> bool:
        """Take more audio; return ``ended``."""
        audio = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        whole = len(audio) - len(audio) % FRAME
        self._pending = audio[whole:]
        for start in range(0, whole, FRAME):
            if self.ended:
                break
            self._step(audio[start : start + FRAME])
        return self.ended

    def _step(self, frame: Samples) -> None:
        batch = np.concatenate([self._context, frame[None, :]], axis=1)
        output, self._h, self._c = self._session.run(None, {"input": batch, "h": self._h, "c": self._c})
        self._context = frame[None, -_CONTEXT:]
        probability = float(np.asarray(output).reshape(-1)[0])
        if probability >= self.threshold:
            self._speech_run += 1
            self._silence_run = 0
            self.speech_frames += 1
            if self._speech_run >= _MIN_SPEECH_FRAMES:
                self.speech = True
        elif probability < self.threshold - 0.15:
            self._speech_run = 0
            self._silence_run += 1
            if self.speech and self._silence_run >= self._silence_frames_needed:
                self.ended = True
