"""The ``Embedder`` protocol every backend satisfies, what the database records about its vectors, and
the package's errors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Embedder", "EmbedderInfo", "EmbeddingError"]


class EmbeddingError(Exception):
    """Base of every embedding error: the model could not be loaded or did not answer; the message says
    what to do."""


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
