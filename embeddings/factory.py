"""The embedder the settings ask for: ONNX Runtime (``local``), sentence-transformers, or an API."""

from __future__ import annotations

from typing import Any

from embeddings.api import LiteLLMEmbedder
from embeddings.base import Embedder
from embeddings.cache import MODELS, ModelCache
from embeddings.local import SentenceTransformerEmbedder
from embeddings.onnx import OnnxEmbedder

__all__ = ["embedder_from_settings"]


def embedder_from_settings(settings: Any, *, cache: ModelCache | None = None) -> Embedder:
    """The process's embedder for these settings: one per backend and model (and API base), created on
    first use and kept in ``cache`` (default: ``MODELS``) with the model it loads."""
    models = MODELS if cache is None else cache
    backend, model, batch = (
        settings.embedding_backend,
        settings.embedding_model,
        settings.embedding_batch_size,
    )
    if backend == "local":
        return models.get(
            ("embedder", backend, model), lambda: OnnxEmbedder(model, batch_size=batch, cache=models)
        )
    if backend == "sentence-transformers":
        return models.get(
            ("embedder", backend, model),
            lambda: SentenceTransformerEmbedder(model, batch_size=batch, cache=models),
        )
    api_base = settings.llm_api_base
    if api_base is None and model.startswith("ollama"):
        api_base = settings.ollama_url
    secret = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    return models.get(
        ("embedder", backend, model, api_base or ""),
        lambda: LiteLLMEmbedder(model, api_base=api_base, api_key=secret or None, batch_size=batch),
    )
