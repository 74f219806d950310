"""A Kommandant on the embedded runtime (real Postgres, the in-process bus) with the agents whose tools
need no embedding model, and helpers that read a scrape with prometheus_client's own parser."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from assistant.runtime import Runtime
from settings import Settings
from storage import Database

AGENTS = ["reminders", "system", "scheduler"]


@pytest_asyncio.fixture(loop_scope="session")
async def runtime(db: Database, settings: Settings) -> AsyncIterator[Runtime]:
    configured = settings.model_copy(
        update={"heartbeat_interval": 0.5, "call_timeout": 10.0, "llm_model": ""}
    )
    async with Runtime(configured, agents=AGENTS, database=db) as rt:
        yield rt


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape by name and sorted labels (parsing with prometheus_client's parser)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels``."""
    return sum(
        value
        for (sample, sample_labels), value in found.items()
        if sample == name and set(labels.items()) <= set(sample_labels)
    )
