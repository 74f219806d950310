"""What recognition returns: words with timings and confidences, a whole transcript, a live partial."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Hypothesis", "Partial", "Transcript", "Word"]


@dataclass(frozen=True, slots=True)
class Word:
    """One recognised word; times in seconds from the start of the audio."""

    text: str
    start: float
    end: float
    probability: float
    """The recogniser's confidence in this word, 0..1."""


@dataclass(frozen=True, slots=True)
class Hypothesis:
    """One reading of an utterance among the recogniser's best (Whisper's beams)."""

    text: str
    probability: float
    """The mean token probability of this reading, 0..1."""


@dataclass(frozen=True, slots=True)
class Transcript:
    """A whole utterance as text, with its words."""

    text: str
    words: tuple[Word, ...] = ()
    duration: float = 0.0
    """Seconds of audio that were heard."""
    engine: str = ""
    language: str | None = None
    timings: dict[str, float] = field(default_factory=dict, compare=False)
    """Where the time went (seconds): e.g. decode, transcribe."""
    probability: float | None = None
    """The recogniser's confidence in the whole text, 0..1, when it gave no words (Whisper without word
    timings: the mean token probability)."""
    alternatives: tuple[Hypothesis, ...] = ()
    """The recogniser's best readings, most likely first (the first is ``text``); empty when it gave only
    one. A voice turn may take another when only that one is a command (``voice.hypotheses``)."""

    @property
    def confidence(self) -> float | None:
        """The mean word probability, 0..1; without words, ``probability`` (None when neither is known).

        Not the weakest word: Whisper often gives one short word a low probability in a clip it heard
        perfectly well ("10" in "in 10 minutes"), while the mean still drops when a clip is mumbled,
        noisy or misheard (see bench/voice.py).
        """
        if not self.words:
            return self.probability if self.text.strip() else None
        return sum(w.probability for w in self.words) / len(self.words)

    @property
    def empty(self) -> bool:
        """Nothing was said (silence, noise)."""
        return not self.text.strip()

    def to_json(self) -> dict[str, Any]:
        """Text, words with timings, confidence: the stable JSON of ``kommandant transcribe --json``."""
        return {
            "text": self.text,
            "confidence": None if self.confidence is None else round(self.confidence, 3),
            "duration": round(self.duration, 3),
            "engine": self.engine,
            "language": self.language,
            "words": [
                {
                    "text": w.text,
                    "start": round(w.start, 3),
                    "end": round(w.end, 3),
                    "probability": round(w.probability, 3),
                }
                for w in self.words
            ],
        }


@dataclass(frozen=True, slots=True)
class Partial:
    """What a streaming recogniser has heard so far; ``final`` when the utterance ended."""

    text: str
    final: bool = False
