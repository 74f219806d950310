"""Speech out: Piper and espeak-ng, sentence by sentence, heard back by Whisper."""

from __future__ import annotations

from pathlib import Path

import pytest

from voice import VoiceConfig, WhisperTranscriber, create_synthesizer, resample, speak_sentences
from voice.errors import ModelNotFoundError
from voice.tts import EspeakSynthesizer, PiperSynthesizer

ASYNC = pytest.mark.asyncio(loop_scope="session")
"""Only the async tests run on the session loop (a mark on a plain test is a warning)."""

REPLY = "Started the backup bot. It is running now. Check its logs later."


@ASYNC
@pytest.mark.parametrize("engine", ["piper", "espeak"])
async def test_replies_are_spoken_sentence_by_sentence_and_understood(whisper_dir: Path, engine: str) -> None:
    synthesizer = create_synthesizer(VoiceConfig(tts=engine))  # type: ignore[arg-type]
    assert isinstance(synthesizer, PiperSynthesizer if engine == "piper" else EspeakSynthesizer)
    spoken = [speech async for speech in speak_sentences(synthesizer, REPLY)]
    assert [s.text for s in spoken] == [
        "Started the backup bot.",
        "It is running now.",
        "Check its logs later.",
    ]
    whisper = WhisperTranscriber(VoiceConfig(whisper_model=str(whisper_dir)))
    first = spoken[0]
    assert 0.5 < len(first.samples) / first.rate < 5
    heard = await whisper.transcribe(resample(first.samples, first.rate))
    words = {w.strip(".").lower() for w in heard.text.split()}
    assert words & {"started", "backup", "bot"}, heard.text


def test_a_missing_voice_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="KOMMANDANT_PIPER_VOICE"):
        create_synthesizer(VoiceConfig(tts="piper", piper_voice=tmp_path / "none.onnx"))
    assert create_synthesizer(VoiceConfig(tts="off")) is None
