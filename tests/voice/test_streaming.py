"""Streaming: Vosk partials growing while someone speaks, the VAD ending the utterance, Whisper's final."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.voice.conftest import Clip
from voice import (
    Listener,
    ModelNotFoundError,
    VoiceConfig,
    VoskStreamingRecognizer,
    WhisperTranscriber,
    decode_file,
    resample,
)
from voice.audio import to_pcm16

ASYNC = pytest.mark.asyncio(loop_scope="session")
"""Only the async tests run on the session loop (a mark on a plain test is a warning)."""


def test_vosk_partials_grow_and_end_in_a_final(clips: dict[str, list[Clip]], vosk_dir: Path) -> None:
    # The Korean model only exercises the streaming path here; its words are not checked for meaning.
    samples = decode_file(clips["piper"][6].path)
    stream = VoskStreamingRecognizer(VoiceConfig(vosk_model=vosk_dir, bias=False))
    partials = []
    for start in range(0, len(samples), 1600):
        partial = stream.accept(samples[start : start + 1600])
        if partial is not None:
            partials.append(partial.text)
    final = stream.finish()
    assert len(partials) >= 2, partials
    lengths = [len(p.split()) for p in partials]
    assert lengths[-1] > lengths[0], partials
    assert not final.empty and final.engine == "vosk"
    starts = [w.start for w in final.words]
    assert starts == sorted(starts) and all(0 <= w.probability <= 1 for w in final.words)


def test_missing_models_name_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="KOMMANDANT_VOSK_MODEL") as err:
        VoskStreamingRecognizer(VoiceConfig(vosk_model=None))
    assert err.value.setting == "KOMMANDANT_VOSK_MODEL"
    with pytest.raises(ModelNotFoundError, match="KOMMANDANT_WHISPER_MODEL"):
        WhisperTranscriber(VoiceConfig(whisper_model=str(tmp_path / "nowhere")))
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(ModelNotFoundError, match=r"lacks model\.bin, tokenizer\.json"):
        WhisperTranscriber(VoiceConfig(whisper_model=str(tmp_path / "half")))
    not_vosk = tmp_path / "not-vosk"
    not_vosk.mkdir()
    with pytest.raises(ModelNotFoundError, match="is not a Vosk model"):
        VoskStreamingRecognizer(VoiceConfig(vosk_model=not_vosk))


@ASYNC
async def test_browser_rate_stream_with_vosk_partials_and_whisper_final(
    clips: dict[str, list[Clip]], whisper_dir: Path, vosk_dir: Path
) -> None:
    """What the web chat does: 24 kHz PCM16 chunks in, live partials, VAD end, Whisper's final text."""
    config = VoiceConfig(stt="vosk+whisper", whisper_model=str(whisper_dir), vosk_model=vosk_dir, bias=False)
    speech = resample(decode_file(clips["piper"][4].path), 16_000, 24_000)
    audio = np.concatenate([np.zeros(12_000, np.float32), speech, np.zeros(24_000 * 3, np.float32)])
    listener = Listener(config, WhisperTranscriber(config), rate=24_000)
    partials, fed = [], 0
    chunk = 2_400  # 100 ms at 24 kHz, as the browser sends them
    while not listener.ended and fed < len(audio):
        partial = await listener.feed(to_pcm16(audio[fed : fed + chunk]))
        fed += chunk
        if partial is not None:
            partials.append(partial.text)
    assert listener.ended and listener.heard_speech and not listener.too_long
    assert fed < len(audio), "the VAD should end the utterance before the trailing silence runs out"
    assert len(partials) >= 2
    final = await listener.finish()
    assert final.engine == "whisper"
    assert "stretch" in final.text.lower() and "10" in final.text


@ASYNC
async def test_listener_stops_at_the_length_limit(whisper_dir: Path) -> None:
    config = VoiceConfig(whisper_model=str(whisper_dir), max_seconds=2.0)
    listener = Listener(config, None, rate=16_000)
    rng = np.random.default_rng(3)
    for _ in range(30):
        await listener.feed(to_pcm16(rng.normal(0, 0.05, 1_600).astype(np.float32)))
    assert listener.too_long and listener.ended and 2.0 <= listener.seconds < 2.2
    assert (await listener.finish()).empty
