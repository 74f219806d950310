"""The local embedder: ONNX Runtime gives the vectors sentence-transformers gives, without PyTorch loaded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from embeddings import (
    DEFAULT_MODEL,
    OnnxEmbedder,
    SentenceTransformerEmbedder,
    resolve_local_model,
)
from embeddings.onnx import onnx_file


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One export folder for this module: exporting takes seconds, once is enough."""
    return tmp_path_factory.mktemp("onnx")


TEXTS = [
    "my editor is neovim",
    "Where is the spare key? Under the mat.",
    "deployment runs every friday after the backup " * 60,  # longer than the model's 256 tokens
    "",
]


@pytest.mark.asyncio(loop_scope="session")
async def test_onnx_vectors_equal_sentence_transformers(onnx_cache: Path) -> None:
    onnx = OnnxEmbedder(DEFAULT_MODEL, cache_dir=onnx_cache)
    reference = SentenceTransformerEmbedder(DEFAULT_MODEL)
    ours, theirs = np.array(await onnx.embed(TEXTS)), np.array(await reference.embed(TEXTS))
    assert ours.shape == theirs.shape == (len(TEXTS), 384) and await onnx.dimension() == 384
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert np.all(np.sum(ours * theirs, axis=1) > 0.9999)
    assert await onnx.embed([]) == []


def test_a_model_folder_is_exported_once_and_then_reused(onnx_cache: Path) -> None:
    folder = Path(resolve_local_model(DEFAULT_MODEL))
    first = onnx_file(folder, onnx_cache)
    assert first.is_file() and first.is_relative_to(onnx_cache) and first.stat().st_size > 10_000_000
    stamp = first.stat().st_mtime_ns
    assert onnx_file(folder, onnx_cache) == first and first.stat().st_mtime_ns == stamp
    assert not list(onnx_cache.rglob("*.part"))  # written atomically


def test_embedding_does_not_load_pytorch(onnx_cache: Path) -> None:
    """The point of the ONNX path: a process that embeds never imports torch (hundreds of MB)."""
    folder = Path(resolve_local_model(DEFAULT_MODEL))
    onnx_file(folder, onnx_cache)  # exported here (if not yet), where torch may load
    script = (
        "import asyncio, sys; from pathlib import Path; from embeddings import OnnxEmbedder;"
        f"e = OnnxEmbedder(cache_dir=Path({str(onnx_cache)!r}));"
        "v = asyncio.run(e.embed(['hello there']));"
        "print(len(v[0]), 'torch' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["384", "False"]
