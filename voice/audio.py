"""Audio in: files of any common format, raw PCM16 from the browser, resampling to 16 kHz mono.

Files are decoded with PyAV (the decoder faster-whisper uses), so WAV, FLAC, OGG, MP3 and more read
the same way; raw PCM is resampled with PyAV's resampler, which keeps its filter state across chunks.
"""

from __future__ import annotations

import io
import wave
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from voice.errors import AudioError

__all__ = [
    "MAX_RATE",
    "MIN_RATE",
    "SAMPLE_RATE",
    "PcmResampler",
    "Samples",
    "check_rate",
    "decode_file",
    "duration",
    "pcm16_to_float",
    "resample",
    "to_pcm16",
    "wav_bytes",
]

SAMPLE_RATE = 16_000
"""The rate every recogniser here works at."""
MIN_RATE = 8_000
MAX_RATE = 192_000

Samples = npt.NDArray[np.float32]
"""Mono audio as float32 in [-1, 1]."""


def check_rate(rate: int) -> None:
    """Refuse sample rates no microphone produces (a wrongly declared rate garbles everything)."""
    if not isinstance(rate, int) or not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(
            f"Audio at {rate} Hz cannot be used: the sample rate must be between {MIN_RATE:,} and "
            f"{MAX_RATE:,} Hz (microphones send 16,000 to 48,000 Hz)."
        )


def decode_file(path: Path) -> Samples:
    """Decode an audio file of any common format to 16 kHz mono float32.

    Raises ``AudioError`` with one sentence for a missing, empty or corrupt file.
    """
    if not path.is_file():
        raise AudioError(f"{path}: no such audio file.")
    if path.stat().st_size == 0:
        raise AudioError(f"{path.name}: the file is empty.")
    import av
    from faster_whisper.audio import decode_audio

    try:
        samples = decode_audio(str(path), sampling_rate=SAMPLE_RATE)
    except (av.error.FFmpegError, ValueError, IndexError, StopIteration) as err:
        raise AudioError(
            f"{path.name}: not an audio file I can read ({type(err).__name__}); use WAV, FLAC, OGG or MP3."
        ) from err
    if not isinstance(samples, np.ndarray):
        raise AudioError(f"{path.name}: could not be decoded as mono audio.")
    return samples.astype(np.float32, copy=False)


def pcm16_to_float(data: bytes) -> Samples:
    """Little-endian signed 16-bit PCM bytes -> float32 samples in [-1, 1]."""
    if len(data) % 2:
        raise AudioError("PCM16 audio must have an even number of bytes (two per sample).")
    return (np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0).astype(np.float32)


def to_pcm16(samples: Samples) -> bytes:
    """float32 samples -> little-endian PCM16 bytes (clipped)."""
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


class PcmResampler:
    """Resample a stream of PCM16 chunks at ``rate`` to 16 kHz float32, keeping state between chunks."""

    def __init__(self, rate: int, target: int = SAMPLE_RATE) -> None:
        check_rate(rate)
        self.rate, self.target = rate, target
        self._resampler: Any = None
        self._pts = 0

    def feed(self, data: bytes) -> Samples:
        """The 16 kHz samples for this chunk (a few may come with the next chunk)."""
        samples = pcm16_to_float(data)
        if self.rate == self.target or not len(samples):
            return samples
        return self._run(np.frombuffer(data, dtype="<i2"))

    def flush(self) -> Samples:
        """The samples still held in the filter."""
        if self.rate == self.target or self._resampler is None:
            return np.zeros(0, dtype=np.float32)
        return self._run(None)

    def _run(self, pcm: npt.NDArray[np.int16] | None) -> Samples:
        import av

        if self._resampler is None:
            self._resampler = av.AudioResampler(format="s16", layout="mono", rate=self.target)
        frame = None
        if pcm is not None:
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(pcm)[None, :], format="s16", layout="mono"
            )
            frame.sample_rate = self.rate
            frame.pts = self._pts
            self._pts += len(pcm)
        frames = self._resampler.resample(frame)
        if not frames:
            return np.zeros(0, dtype=np.float32)
        out = np.concatenate([f.to_ndarray().reshape(-1) for f in frames])
        return (out.astype(np.float32) / 32768.0).astype(np.float32)


def resample(samples: Samples, rate: int, target: int = SAMPLE_RATE) -> Samples:
    """Resample a whole float32 signal from ``rate`` to ``target``."""
    check_rate(rate)
    if rate == target:
        return samples.astype(np.float32, copy=False)
    resampler = PcmResampler(rate, target)
    data = to_pcm16(samples)
    return np.concatenate([resampler.feed(data), resampler.flush()])


def duration(samples: Samples, rate: int = SAMPLE_RATE) -> float:
    """Seconds of audio."""
    return len(samples) / rate


def wav_bytes(samples: Samples, rate: int = SAMPLE_RATE) -> bytes:
    """A mono PCM16 WAV file of ``samples``."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(to_pcm16(samples))
    return buffer.getvalue()
