"""Fixtures for the LLM tests: the real local embedding model, the tool-retrieval index it builds and the
tools it offers for every utterance of the tables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest_asyncio
import yaml

from assistant.llm import LLMFallback
from assistant.tool_choice import ToolIndex, query_views
from embeddings import Embedder
from settings import Settings
from tests.intents.table import TABLE_PATH
from tests.knowledge.conftest import embedder  # noqa: F401 (the fixture, for these tests too)
from tools import Catalog, builtin_catalog

HERE = Path(__file__).parent
TABLES = {
    "templates": (TABLE_PATH, "cases", "text"),
    "heard": (TABLE_PATH.parent / "data" / "heard.yaml", "misheard", "heard"),
    "paraphrases": (HERE / "paraphrases.yaml", "cases", "text"),
    "held_out": (HERE / "held_out.yaml", "cases", "text"),
}
"""The utterance tables: per name, the file, its list of cases and the key of a case's words. The last
two are commands the templates miss; held_out was written after retrieval was tuned on the others and is
never tuned on."""


@dataclass(frozen=True)
class Offered:
    """One utterance of a table, the tool it means and the tools retrieval offers for it."""

    text: str
    tool: str
    chosen: list[str]


def table_cases() -> dict[str, list[tuple[str, str]]]:
    """Per table, its (utterance, tool) pairs."""
    found = {}
    for name, (path, key, field) in TABLES.items():
        cases = yaml.safe_load(path.read_text(encoding="utf-8"))[key]
        found[name] = [(case[field], case["tool"]) for case in cases]
    return found


@dataclass
class Holder:
    """What ``LLMFallback`` reads of the services: the catalog."""

    catalog: Catalog


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def tool_index(embedder: Embedder) -> ToolIndex:  # noqa: F811
    """The index the fallback uses, built before any turn (runtimes of this process share it; its vectors
    are kept between runs), so no turn's deadline pays for embedding the tools' sentences."""
    catalog = builtin_catalog()
    fallback = LLMFallback(Settings.model_validate({"llm_model": "openai/x"}), cast(Any, Holder(catalog)))
    index = await fallback._tool_index(catalog)
    assert index.embedded and embedder.ready()
    return index


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def offered(tool_index: ToolIndex, embedder: Embedder) -> dict[str, list[Offered]]:  # noqa: F811
    """Per table, what retrieval offers for each utterance (embedded once for the retrieval figures and
    the prompt-token count alike)."""
    found: dict[str, list[Offered]] = {}
    for name, cases in table_cases().items():
        views = [query_views(text) for text, _ in cases]
        vectors = await embedder.embed([view for group in views for view in group])
        found[name], at = [], 0
        for (text, tool), group in zip(cases, views, strict=True):
            found[name].append(Offered(text, tool, tool_index.choose(text, vectors[at : at + len(group)])))
            at += len(group)
    return found
