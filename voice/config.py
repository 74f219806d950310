"""The voice settings the engines need, passed in by the caller (voice never reads the environment)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["VoiceConfig"]

Engine = Literal["whisper", "vosk", "vosk+whisper"]


@dataclass(frozen=True)
class VoiceConfig:
    """What the speech engines are and how they behave; built from ``Settings`` at the entry point."""

    stt: Engine = "whisper"
    whisper_model: str = "base.en"
    whisper_device: Literal["auto", "cpu", "cuda"] = "auto"
    whisper_compute_type: str = "default"
    whisper_beam_size: int = 5
    word_timings: bool = False
    """Whisper word timestamps (and per-word confidences). Off for commands: aligning words makes Whisper
    decode again after the last word, where a prompted model invents more ("… the backup bot. You"), which
    doubled or tripled the time of a turn (bench/voice.py); ``kommandant transcribe`` turns it on."""
    threads: int = 0
    vosk_model: Path | None = None
    vad_silence_ms: int = 700
    vad_threshold: float = 0.5
    bias: bool = True
    max_seconds: float = 60.0
    partial_every: float = 1.0
    """Seconds of new audio between two Whisper drafts of the words so far, shown live where no streaming
    (Vosk) recogniser runs; 0 turns the drafts off. A draft also waits half as long as the last one took."""
    tts: Literal["piper", "espeak", "off"] = "piper"
    piper_voice: Path | None = None
    models_dir: Path | None = None
    """Where named models are downloaded (``data_dir/models``); None: faster-whisper's default cache."""
