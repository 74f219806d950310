"""The intent table: every utterance must give exactly the expected tool call(s)."""

from __future__ import annotations

from typing import Any

import pytest

from intents import ConversationContext, IntentMatch, Recognizer
from tests.intents.table import load_table
from tools import Catalog
from tools.builtin.system import DescribeInput

TABLE = load_table()


def expected(catalog: Catalog, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Arguments as the tool's input model fills them in (defaults added, None left out)."""
    return catalog.get(tool).validate_arguments(arguments).model_dump(mode="json", exclude_none=True)


def test_table_covers_every_tool(catalog: Catalog) -> None:
    """Every tool a person can say; not the agents' ``describe`` tools, which only the Kommandant calls
    (to word an approval card) and which no sentence may reach."""
    said = {tool.name for tool in catalog if not issubclass(tool.input_model, DescribeInput)}
    assert len(said) < len(catalog)
    assert len(TABLE.cases) >= 150
    assert {case["tool"] for case in TABLE.cases} == said


@pytest.mark.parametrize("case", TABLE.cases, ids=[case["text"] for case in TABLE.cases])
def test_single_command(recognizer: Recognizer, catalog: Catalog, case: dict[str, Any]) -> None:
    matches = recognizer.recognize(case["text"], lists=TABLE.lists, now=TABLE.now)
    assert [(m.tool, m.arguments) for m in matches] == [
        (case["tool"], expected(catalog, case["tool"], case["args"]))
    ]
    assert matches[0].confidence == pytest.approx(case.get("confidence", 1.0))
    assert matches[0].source == "template"


@pytest.mark.parametrize("case", TABLE.multi, ids=[case["text"] for case in TABLE.multi])
def test_several_commands_in_order(recognizer: Recognizer, catalog: Catalog, case: dict[str, Any]) -> None:
    matches = recognizer.recognize(case["text"], lists=TABLE.lists, now=TABLE.now)
    want = [(m["tool"], expected(catalog, m["tool"], m["args"])) for m in case["matches"]]
    assert [(m.tool, m.arguments) for m in matches] == want


@pytest.mark.parametrize("case", TABLE.followups, ids=[case["text"] for case in TABLE.followups])
def test_follow_up_resolves_from_context(
    recognizer: Recognizer, catalog: Catalog, case: dict[str, Any]
) -> None:
    context = TABLE.context(case)
    matches = recognizer.recognize(case["text"], lists=TABLE.lists, now=TABLE.now, context=context)
    assert [(m.tool, m.arguments) for m in matches] == [
        (case["tool"], expected(catalog, case["tool"], case["args"]))
    ]
    assert matches[0].confidence < 1.0


@pytest.mark.parametrize("text", TABLE.none)
def test_no_confident_match(recognizer: Recognizer, text: str) -> None:
    assert recognizer.recognize(text, lists=TABLE.lists, now=TABLE.now) == []


def test_context_observes_matches_in_a_conversation(recognizer: Recognizer) -> None:
    context = ConversationContext()
    for match in recognizer.recognize("start the crawler bot", lists=TABLE.lists, now=TABLE.now):
        context.observe(match)
    assert context.bot == "crawler"
    follow_up = recognizer.recognize("stop it", lists=TABLE.lists, now=TABLE.now, context=context)
    assert [(m.tool, m.arguments) for m in follow_up] == [("bots_stop", {"name": "crawler"})]


def test_unlisted_bot_needs_the_word_bot(recognizer: Recognizer) -> None:
    assert recognizer.recognize("stop the gizmo", lists=TABLE.lists, now=TABLE.now) == []
    [match] = recognizer.recognize("stop the gizmo bot", lists=TABLE.lists, now=TABLE.now)
    assert (match.tool, match.arguments, match.confidence) == ("bots_stop", {"name": "gizmo"}, 0.9)


def test_without_lists_known_phrasing_still_parses(recognizer: Recognizer) -> None:
    [match] = recognizer.recognize("start the backup bot", now=TABLE.now)
    assert (match.tool, match.arguments) == ("bots_start", {"name": "backup"})


def test_match_json_and_text(recognizer: Recognizer) -> None:
    first, second = recognizer.recognize(
        "Remind me to stretch in an hour, and start the backup bot", lists=TABLE.lists, now=TABLE.now
    )
    assert first.text == "Remind me to stretch in an hour"
    assert second.text == "start the backup bot"
    assert second.to_json() == {
        "tool": "bots_start",
        "arguments": {"name": "backup"},
        "confidence": 1.0,
        "source": "template",
    }
    assert isinstance(first, IntentMatch)


def test_inline_templates_replace_the_builtin_ones(catalog: Catalog) -> None:
    templates = {
        "language": "en",
        "intents": {"system_status": {"examples": ["howdy"], "data": [{"sentences": ["howdy [partner]"]}]}},
    }
    recognizer = Recognizer(catalog, templates=templates)
    assert [m.tool for m in recognizer.recognize("Howdy, partner!")] == ["system_status"]
    assert recognizer.recognize("what's the status") == []


def test_templates_naming_an_unknown_tool_are_refused(catalog: Catalog) -> None:
    templates = {"language": "en", "intents": {"make_coffee": {"data": [{"sentences": ["coffee"]}]}}}
    with pytest.raises(ValueError, match="make_coffee"):
        Recognizer(catalog, templates=templates)


def test_suggest_offers_close_commands(recognizer: Recognizer) -> None:
    suggestions = recognizer.suggest("could you do something with the bot logs", limit=3)
    assert len(suggestions) == 3
    assert any("log" in s for s in suggestions)
    assert recognizer.suggest("", limit=2) and len(recognizer.suggest("", limit=2)) == 2
    assert recognizer.suggest("anything", limit=0) == []


def test_now_defaults_and_naive_now_is_local(recognizer: Recognizer) -> None:
    [match] = recognizer.recognize("remind me to stretch in ten minutes")
    assert match.arguments["due"].endswith(("+02:00", "+01:00"))
    naive = TABLE.now.replace(tzinfo=None)
    [match] = recognizer.recognize("remind me to stretch in ten minutes", now=naive)
    assert match.arguments["due"] == "2025-06-11T10:10:00+02:00"
