"""Tool retrieval for the LLM's tool choice: the right tool is among the few offered, measured on the
project's utterance tables with the real local embedding model; and the specs are compact and stable."""

from __future__ import annotations

import json

import pytest

from assistant.llm import TOOL_PROMPT
from assistant.tool_choice import MAX_TOOLS, ToolIndex, _said, _words, tool_specs
from intents import Recognizer, load_templates
from tests.intents.table import Table, load_table
from tests.llm.conftest import Offered
from tools import Catalog, builtin_catalog

PROMPT_CHARS = 3_600
"""The tool-choice prompt's JSON and text, at most: about 1,200 tokens at 3 characters a token (English
and JSON run 3.5-4.5 with these tokenizers); test_real_model.py counts the real tokens with the model's
own tokenizer over the prompt the server renders."""
MISSED_SHARE = 0.98
"""The share of commands the templates miss (paraphrases.yaml) offered the right tool, at least
(measured: 70 of 70); the templates' and the misheard tables' too."""
HELD_OUT_SHARE = 0.95
"""The same share on held_out.yaml, at least. It is never tuned on: measured 44 of 44 when written (33
tools; also 44 of 44 before the synonyms that brought paraphrases.yaml from 68 to 70 of 70), then 43 of 44
(97.7 %) once the catalog grew to 36 tools ("is remote work covered anywhere in what we wrote up" ranks
knowledge_search 7th). The floor leaves room for one more miss as the catalog grows."""


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return builtin_catalog()


@pytest.fixture
def index(tool_index: ToolIndex) -> ToolIndex:
    return tool_index


async def test_the_right_tool_is_offered_for_commands_the_templates_miss(
    offered: dict[str, list[Offered]], catalog: Catalog
) -> None:
    """The right tool is offered for >= 98 % of the commands the templates miss and of the tables'
    commands; the held-out table's share is reported and kept above its floor; the prompt stays small."""
    table: Table = load_table()
    recognizer = Recognizer(catalog, timezone=table.timezone)
    for name in ("paraphrases", "held_out"):  # these are what the fallback exists for
        for case in offered[name]:
            assert recognizer.recognize(case.text, lists=table.lists, now=table.now) == [], case.text
    figures: dict[str, tuple[int, int, list[tuple[str, str]]]] = {}
    largest = 0
    for name, group in offered.items():
        largest = max([largest, *(len(json.dumps(tool_specs(catalog, c.chosen))) for c in group)])
        missed = [(c.text, c.tool) for c in group if c.tool not in c.chosen]
        assert all(len(c.chosen) <= MAX_TOOLS for c in group)
        figures[name] = (len(group) - len(missed), len(group), missed)
    full = len(json.dumps(tool_specs(catalog)))
    print(json.dumps({**{k: f"{v[0]}/{v[1]}" for k, v in figures.items()}, "largest_offered_chars": largest,
                      "full_catalog_chars": full}))  # fmt: skip
    longest = max(len(c.text) for group in offered.values() for c in group)
    assert len(TOOL_PROMPT) + largest + longest <= PROMPT_CHARS  # the prompt stays small for every one
    assert largest * 3 < full
    for name, (found, total, missed) in figures.items():
        assert found / total >= (HELD_OUT_SHARE if name == "held_out" else MISSED_SHARE), (name, missed)


def test_words_for_the_catalogs_words_count_as_its_keywords() -> None:
    """A frequency word is "every", a removal is cancel/delete, a reminder's everyday names are
    "reminder": the keyword score sees the catalog's vocabulary in a person's."""
    found = _said(_words("scrap the heads up, hourly"))
    assert {"every", "cancel", "delete", "reminder"} <= found
    assert _said(_words("list the bots")) == {"list", "bot"}


async def test_keywords_alone_offer_tools_for_commands_and_none_for_chatter(catalog: Catalog) -> None:
    index = await ToolIndex.build(catalog, load_templates(), None)
    assert not index.embedded
    assert "bots_restart" in index.choose("reboot the crawler bot")
    assert "knowledge_search" in index.choose("check the handbook for the vacation policy")
    assert index.choose("tell me a joke about ducks") == []  # no tool: the model answers as chat


def test_specs_are_compact_stable_and_in_catalog_order(catalog: Catalog) -> None:
    every = tool_specs(catalog)
    names = [spec["function"]["name"] for spec in every]
    assert names == catalog.names()
    text = json.dumps(every)
    assert '"title": "' not in text and "$ref" not in text and "$defs" not in text
    assert "additionalProperties" not in text and "maxLength" not in text
    assert all(len(spec["function"]["description"]) <= 100 for spec in every)
    chosen = ["memory_remember", "bots_stop", "reminders_create"]
    first = json.dumps(tool_specs(catalog, chosen))
    assert first == json.dumps(tool_specs(catalog, reversed(chosen)))  # the same bytes every turn
    assert [s["function"]["name"] for s in json.loads(first)] == [n for n in names if n in chosen]
    # a nested model is inlined, its optional fields as plain types
    [schedule] = tool_specs(catalog, ["schedules_create"])
    assert "cron" in json.dumps(schedule["function"]["parameters"])
