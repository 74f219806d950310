"""The model cache: one load per key under concurrent threads, one lock per key, failures not kept."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from embeddings.cache import ModelCache

WAIT = 10.0
"""Seconds any event is awaited: a broken cache fails the test instead of hanging it."""


def test_concurrent_gets_of_one_key_load_once() -> None:
    cache, loads, start = ModelCache(), [], threading.Barrier(8)

    def load() -> object:
        loads.append(1)
        threading.Event().wait(0.05)  # slow enough that every thread arrives while it loads
        return object()

    def get(_: int) -> object:
        start.wait(WAIT)
        return cache.get(("model", "a"), load)

    with ThreadPoolExecutor(8) as pool:
        models = list(pool.map(get, range(8)))
    assert len(loads) == 1
    assert all(model is models[0] for model in models)
    assert ("model", "a") in cache and ("model", "b") not in cache


def test_a_slow_load_does_not_block_another_key() -> None:
    cache = ModelCache()
    a_started, a_may_finish, b_done = threading.Event(), threading.Event(), threading.Event()

    def load_a() -> str:
        a_started.set()
        assert a_may_finish.wait(WAIT)
        return "whisper"

    def get_b() -> None:
        assert cache.get("b", lambda: "embedding model") == "embedding model"
        b_done.set()

    with ThreadPoolExecutor(2) as pool:
        a = pool.submit(cache.get, "a", load_a)
        assert a_started.wait(WAIT)
        pool.submit(get_b)
        try:
            assert b_done.wait(WAIT), "loading key b waited for key a"
            assert "a" not in cache and "b" in cache
        finally:
            a_may_finish.set()
        assert a.result(WAIT) == "whisper"
    assert "a" in cache


def test_a_failed_load_raises_to_the_caller_and_is_not_kept() -> None:
    cache = ModelCache()

    def broken() -> str:
        raise FileNotFoundError("no model here")

    with pytest.raises(FileNotFoundError, match="no model here"):
        cache.get("m", broken)
    assert "m" not in cache
    assert cache.get("m", lambda: "loaded") == "loaded"


def test_waiters_retry_after_a_failed_load() -> None:
    cache, calls = ModelCache(), []
    first_loading, first_may_fail = threading.Event(), threading.Event()

    def load() -> str:
        calls.append(1)
        if len(calls) == 1:
            first_loading.set()
            assert first_may_fail.wait(WAIT)
            raise OSError("disk hiccup")
        return "loaded"

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(cache.get, "m", load)
        assert first_loading.wait(WAIT)
        second = pool.submit(cache.get, "m", load)  # waits on the key's lock
        first_may_fail.set()
        with pytest.raises(OSError, match="disk hiccup"):
            first.result(WAIT)
        assert second.result(WAIT) == "loaded"
    assert len(calls) == 2


def test_clear_drops_models_and_the_next_get_loads_again() -> None:
    cache, loads = ModelCache(), []

    def load() -> int:
        loads.append(1)
        return len(loads)

    assert cache.get("m", load) == 1 and cache.get("m", load) == 1
    cache.clear()
    assert "m" not in cache
    assert cache.get("m", load) == 2


def test_release_drops_every_model_and_keeps_no_later_load() -> None:
    """At exit nothing may stay in the cache: an ONNX session torn down during finalisation aborts."""
    loading, may_finish = threading.Event(), threading.Event()

    def slow() -> str:
        loading.set()
        assert may_finish.wait(WAIT)
        return "late"

    with ModelCache() as cache, ThreadPoolExecutor(1) as pool:
        assert cache.get("loaded", lambda: "early") == "early"
        late = pool.submit(cache.get, "late", slow)
        assert loading.wait(WAIT)
        cache.release(timeout=0.05)  # gives up waiting for the load still running
        assert "loaded" not in cache
        may_finish.set()
        assert late.result(WAIT) == "late"  # its caller gets it, the cache does not keep it
        assert "late" not in cache
        assert cache.get("after", lambda: "uncached") == "uncached" and "after" not in cache
