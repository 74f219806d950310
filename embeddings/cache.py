"""Models loaded at most once per process and shared by every session and thread.

Loading is slow (hundreds of ms to seconds) and models are large. Each key has its own lock, so loading
Whisper does not hold up loading the embedding model; a failed load is not kept, and the next caller tries
again. ``MODELS`` is the one cache of the process (embeddings and voice share it); it is released at exit.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

__all__ = ["MODELS", "ModelCache"]

T = TypeVar("T")


class ModelCache:
    """Loaded models by key (a tuple naming the kind and what identifies the model): ``get(key, load)``
    calls ``load`` at most once per key, however many threads ask at the same time."""

    def __init__(self) -> None:
        self._guard = threading.Lock()  # guards the dicts only; never held while a model loads
        self._models: dict[Hashable, Any] = {}
        self._locks: dict[Hashable, threading.Lock] = {}
        self._closed = False

    def get(self, key: Hashable, load: Callable[[], T]) -> T:
        """The model under ``key``, loading it with ``load`` (blocking, in the calling thread) if it is not
        loaded yet. Other threads asking for the same key wait for that load; other keys do not. An
        exception of ``load`` reaches the caller and nothing is kept."""
        with self._guard:
            if key in self._models:
                return self._models[key]
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            with self._guard:
                if key in self._models:
                    return self._models[key]
            model = load()
            with self._guard:
                if not self._closed:  # loaded after release(): the caller's alone, never torn down late
                    self._models[key] = model
            return model

    def __contains__(self, key: Hashable) -> bool:
        """Whether the model under ``key`` is loaded (a ``get`` would return at once)."""
        with self._guard:
            return key in self._models

    def clear(self) -> None:
        """Drop every loaded model (tests and benchmarks measuring a cold start); the cache stays usable."""
        with self._guard:
            self._models.clear()

    def release(self, timeout: float = 5.0) -> None:
        """Drop every model for good, waiting up to ``timeout`` seconds for loads still running; a load
        that finishes later is not kept. Runs at exit for ``MODELS``: an ONNX Runtime session destroyed
        while the interpreter finalises aborts the process ("terminate called without an active
        exception"), so no model may outlive this call in the cache."""
        with self._guard:
            self._closed = True
            locks = list(self._locks.values())
        deadline = time.monotonic() + timeout
        for lock in locks:  # a model loading (in a daemon thread, say) holds its key's lock
            if lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                lock.release()
        with self._guard:
            self._models.clear()

    def __enter__(self) -> ModelCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


MODELS = ModelCache()
"""The process's models: embedding models, Whisper, Vosk and Piper."""

atexit.register(MODELS.release)
