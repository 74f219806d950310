"""Text -> vectors behind the ``Embedder`` protocol: a local model in this process (ONNX Runtime by
default, or sentence-transformers), or an API via litellm. Loaded models live in the process's one
``ModelCache``, shared with voice.

Modules: ``base`` (protocol, info, errors), ``cache`` (the model cache), ``local`` (in-process embedders,
sentence-transformers), ``onnx`` (ONNX Runtime and the one-time export), ``api`` (litellm), ``factory``
(the embedder the settings ask for).
"""

from embeddings.api import LiteLLMEmbedder, import_litellm
from embeddings.base import Embedder, EmbedderInfo, EmbeddingError
from embeddings.cache import MODELS, ModelCache
from embeddings.factory import embedder_from_settings
from embeddings.local import DEFAULT_MODEL, SentenceTransformerEmbedder, resolve_local_model
from embeddings.onnx import OnnxEmbedder

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "Embedder",
    "EmbedderInfo",
    "EmbeddingError",
    "LiteLLMEmbedder",
    "ModelCache",
    "OnnxEmbedder",
    "SentenceTransformerEmbedder",
    "embedder_from_settings",
    "import_litellm",
    "resolve_local_model",
]
