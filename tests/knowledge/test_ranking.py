"""Hybrid search on real Postgres with the real local model: paraphrased questions find their passage."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import text

from agents.ingest import ingest_files
from agents.knowledge import KnowledgeBase
from assistant.runtime import Runtime
from embeddings import Embedder
from storage import Database
from storage.models import Base
from tests.knowledge.conftest import knowledge_settings
from tests.knowledge.corpus import TARGETS, distractors


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def handbook(
    database: Database, embedder: Embedder, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[KnowledgeBase]:
    """The corpus as one Markdown handbook (a section per passage), ingested once for this module."""
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    async with database.engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    sections = [(key.capitalize(), passage) for key, passage, _ in TARGETS]
    sections += [(" ".join(p.split()[1:3]).capitalize(), p) for p in distractors()]  # "Platform team"
    random.Random(7).shuffle(sections)
    passages = [passage for _, passage in sections]
    folder = tmp_path_factory.mktemp("corpus")
    path = folder / "handbook.md"
    path.write_text("# Staff handbook\n\n" + "\n\n".join(f"## {head}\n\n{p}" for head, p in sections))
    settings = knowledge_settings(database, folder / "data")
    async with Runtime(settings, agents=[], database=database) as rt:
        assert rt.services is not None
        report = await ingest_files(rt.services, [("handbook.md", path)], user="ann")
        assert report.files[0].error is None, report.files[0].error
        # One chunk per section (two neighbouring sections with the same heading may share one).
        assert len(passages) * 0.9 <= report.files[0].chunks <= len(passages)
        yield KnowledgeBase(rt.services)


@pytest.mark.parametrize(("key", "passage", "question"), TARGETS, ids=[t[0] for t in TARGETS])
async def test_paraphrased_question_ranks_its_passage_first(
    handbook: KnowledgeBase, key: str, passage: str, question: str
) -> None:
    hits = await handbook.search(question, limit=5)
    assert hits, f"nothing found for {question!r}"
    assert hits[0].content == passage, f"{key}: first hit was {hits[0].content!r}"
    assert hits[0].source == "handbook.md"
    assert hits[0].section == key.capitalize()
    assert 0.0 < hits[0].score <= 1.0


async def test_exact_words_still_count(handbook: KnowledgeBase) -> None:
    """A rare literal token (a subnet) is found by the full-text side of the fusion."""
    hits = await handbook.search("10.20.0.0/16", limit=3)
    assert any("WireGuard" in h.content for h in hits)


async def test_search_of_nothing_relevant_still_answers(handbook: KnowledgeBase) -> None:
    hits = await handbook.search("zebra migration patterns in the Serengeti", limit=3)
    assert len(hits) <= 3  # the vector side always returns neighbours; no error, no crash


def test_corpus_is_a_few_hundred_passages() -> None:
    assert len(TARGETS) + len(distractors()) >= 300
    assert Path(__file__).with_name("corpus.py").exists()
