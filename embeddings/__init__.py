"""Text -> vectors behind the ``Embedder`` protocol: a local model in this process, or an API via litellm."""

from embeddings.local import (
    DEFAULT_MODEL,
    Embedder,
    EmbedderInfo,
    EmbeddingError,
    LiteLLMEmbedder,
    OnnxEmbedder,
    SentenceTransformerEmbedder,
    embedder_from_settings,
    import_litellm,
    resolve_local_model,
)

__all__ = [
    "DEFAULT_MODEL",
    "Embedder",
    "EmbedderInfo",
    "EmbeddingError",
    "LiteLLMEmbedder",
    "OnnxEmbedder",
    "SentenceTransformerEmbedder",
    "embedder_from_settings",
    "import_litellm",
    "resolve_local_model",
]
