"""The voice commands as a person runs them: real subprocesses, real models, clear messages."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import pytest

from storage import Database
from tests.test_cli import cli
from tests.voice.conftest import Clip, add_names
from voice import decode_file, wav_bytes

ASYNC = pytest.mark.asyncio(loop_scope="session")
"""Only the async tests run on the session loop (a mark on a plain test is a warning)."""


@pytest.fixture
def env(db: Database, tmp_path: Path, voice_env: dict[str, str]) -> dict[str, str]:
    return {
        **voice_env,
        "KOMMANDANT_DATABASE_URL": db.url,
        "KOMMANDANT_DATA_DIR": str(tmp_path),
        "KOMMANDANT_LLM_MODEL": "",
    }


def test_transcribe_json_and_formats(clips: dict[str, list[Clip]], voice_env: dict[str, str]) -> None:
    # "what reminders do I have": everyday words (transcribe has no names to bias it toward "backup")
    done = cli("transcribe", str(clips["piper"][11].path), "--json", env=voice_env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["text"].lower().strip(".?") == "what reminders do i have"
    assert result["engine"] == "whisper" and result["words"][0]["start"] < result["words"][-1]["end"]
    assert 0 < result["confidence"] <= 1


def test_transcribe_long_file_and_clear_errors(
    clips: dict[str, list[Clip]], voice_env: dict[str, str], tmp_path: Path
) -> None:
    # Ten minutes of a quiet room with one command in the middle: the VAD skips the rest.
    rng = np.random.default_rng(5)
    room = rng.normal(0, 0.002, 16_000 * 600).astype(np.float32)
    speech = decode_file(clips["piper"][10].path)
    middle = 16_000 * 300
    room[middle : middle + len(speech)] += speech
    long = tmp_path / "ten-minutes.wav"
    long.write_bytes(wav_bytes(room))
    done = cli("transcribe", str(long), "--json", env=voice_env, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert "reminders" in result["text"].lower()
    assert 299 < result["words"][0]["start"] < 302 and result["duration"] == pytest.approx(600, abs=0.1)

    corrupt = tmp_path / "broken.wav"
    corrupt.write_bytes(b"RIFF0000WAVEfmt " + b"\x01" * 300)
    done = cli("transcribe", str(corrupt), env=voice_env)
    assert done.returncode == 2 and "broken.wav: not an audio file" in done.stderr
    assert "Traceback" not in done.stderr

    done = cli("transcribe", str(clips["piper"][0].path), env={"KOMMANDANT_WHISPER_MODEL": str(tmp_path)})
    assert (
        done.returncode == 2 and "KOMMANDANT_WHISPER_MODEL" in done.stderr and "Traceback" not in done.stderr
    )


@ASYNC
async def test_ask_audio_runs_a_whole_voice_turn(
    clips: dict[str, list[Clip]], env: dict[str, str], db: Database, tmp_path: Path
) -> None:
    await add_names(db)
    # 8 kHz telephone-quality audio: resampled on the way in.
    low = tmp_path / "low-rate.wav"
    samples = decode_file(clips["piper"][4].path)
    with wave.open(str(low), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8_000)
        out.writeframes((samples[::2] * 32767).astype("<i2").tobytes())
    done = cli("ask", "--audio", str(low), "--json", env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert [i["tool"] for i in result["intents"]] == ["reminders_create"]
    assert result["intents"][0]["arguments"]["text"] == "stretch"
    assert result["tools"][0]["ok"] and result["transcript"]["engine"] == "whisper"

    silence = tmp_path / "silence.wav"
    silence.write_bytes(wav_bytes(np.zeros(16_000 * 3, np.float32)))
    done = cli("ask", "--audio", str(silence), "--json", env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["intents"] == [] and "didn't hear anything" in result["reply"]

    long = tmp_path / "long.wav"
    long.write_bytes(wav_bytes(np.zeros(16_000 * 600, np.float32)))
    done = cli("ask", "--audio", str(long), env=env)
    assert done.returncode == 2 and "long.wav is 10:00 long" in done.stderr and "at most 1:00" in done.stderr


def test_say_writes_speech_and_models_lists_them(
    voice_env: dict[str, str], tmp_path: Path, whisper_dir: Path
) -> None:
    out = tmp_path / "hello.wav"
    done = cli("say", "Hello there. The backup bot is running.", "-o", str(out), env=voice_env)
    assert done.returncode == 0, done.stderr
    with wave.open(str(out)) as wav:
        assert wav.getnframes() / wav.getframerate() > 1.5
    done = cli("models", env=voice_env)
    assert done.returncode == 0, done.stderr
    assert "whisper" in done.stdout and str(whisper_dir) in done.stdout.replace("\n", "")
    assert "piper" in done.stdout and "en_US-joe-medium" in done.stdout


def test_listen_without_a_microphone_says_so(voice_env: dict[str, str], db: Database, tmp_path: Path) -> None:
    env = {**voice_env, "KOMMANDANT_DATABASE_URL": db.url, "KOMMANDANT_DATA_DIR": str(tmp_path)}
    done = cli("listen", env=env, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "microphone" in done.stderr.lower() and "Traceback" not in done.stderr
