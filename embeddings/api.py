"""Embeddings from an API through litellm (e.g. Ollama's ``nomic-embed-text``): nothing loads in this
process."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

from embeddings.base import EmbeddingError

__all__ = ["LiteLLMEmbedder", "import_litellm"]


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


def _normalise(vector: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [float(x) / norm for x in vector]


def _field(item: Any, name: str) -> Any:
    return item[name] if isinstance(item, dict) else getattr(item, name)
