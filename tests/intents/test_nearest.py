"""The nearest command to a misheard one: the template graph search, and the recognizer that uses it."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hassil import Intents

from intents import LiveLists, Recognizer, normalize
from intents.nearest import CommandGraph, sound_distance

TEMPLATES = yaml.safe_load(
    """
language: en
lists:
  bot: {values: []}
  lines: {range: {from: 1, to: 1000}}
  query: {wildcard: true}
expansion_rules:
  the: "[the|my]"
  bot: "<the> {bot:name} [bot]"
intents:
  bots_list:
    data: [{sentences: ["(list|show) <the> (bots|bot)"]}]
  bots_stop:
    data: [{sentences: ["(stop|halt) <bot>"]}]
  bots_logs:
    data: [{sentences: ["show <the> last {lines} lines of <bot> (log|logs)"]}]
  knowledge_search:
    data: [{sentences: ["search <the> (wiki|knowledge base) for {query}"]}]
"""
)
NAMES = {"bot": ["backup", "crawler"]}


@pytest.fixture(scope="module")
def graph() -> CommandGraph:
    return CommandGraph(Intents.from_dict(TEMPLATES), live_lists=["bot"])


def best(graph: CommandGraph, heard: str, **kwargs: Any) -> tuple[str, str] | None:
    found = graph.nearest(normalize(heard).words, names=NAMES, **kwargs)
    return (found[0].intent, found[0].text) if found else None


@pytest.mark.parametrize(
    ("heard", "intent", "text"),
    [
        ("list the mod", "bots_list", "list the bot"),  # a word misheard
        ("stop the crawler, maat", "bots_stop", "stop the crawler"),  # a padded tail dropped
        ("halt the crawled bot", "bots_stop", "halt the crawler bot"),  # a live name misheard
        (
            "show the last 20 lines of the backup bot lock",
            "bots_logs",
            "show the last 20 lines of the backup bot log",
        ),
        ("search the wicky for holiday rules", "knowledge_search", "search the wiki for holiday rules"),
    ],
)
def test_misheard_commands_find_the_sentence_that_was_meant(
    graph: CommandGraph, heard: str, intent: str, text: str
) -> None:
    assert best(graph, heard) == (intent, text)


def test_words_heard_exactly_cost_nothing_and_results_are_cheapest_first(graph: CommandGraph) -> None:
    found = graph.nearest(normalize("stop the backup bot").words, names=NAMES)
    assert (found[0].intent, found[0].text, found[0].cost) == ("bots_stop", "stop the backup bot", 0.0)
    assert [n.cost for n in found] == sorted(n.cost for n in found)
    assert all(sum(m.intent == n.intent for m in found) <= 3 for n in found)  # a few guesses per intent


def test_nothing_is_proposed_for_what_no_command_sounds_like(graph: CommandGraph) -> None:
    assert best(graph, "what a lovely day it is outside") is None
    assert best(graph, "") is None
    # the same words with a tighter budget: even a close guess is refused
    assert best(graph, "list the mod", max_cost_per_word=0.05) is None


def test_a_live_name_comes_from_the_names_passed_in(graph: CommandGraph) -> None:
    heard = normalize("stop the mailed bot").words
    assert all("mailer" not in n.text for n in graph.nearest(heard, names={"bot": ["backup"]}))
    assert graph.nearest(heard, names={"bot": ["mailer"]})[0].text == "stop the mailer bot"


def test_sound_distance() -> None:
    assert sound_distance("bot", "bot") == 0.0
    assert 0 < sound_distance("pending", "ending") < 0.2
    assert sound_distance("bot", "but") < sound_distance("bot", "mod") < 1.0
    assert sound_distance("20", "30") == 1.0
    assert sound_distance("log", "xylophone") > 0.7


# -- the recognizer on the real templates -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("heard", "tool", "arguments"),
    [
        ("Show ending approvals.", "approvals_list", {}),
        ("List the mod.", "bots_list", {}),
        ("Stop the crawler, maat.", "bots_stop", {"name": "crawler"}),
        ("Run the backup schedule. How?", "schedules_run_now", {"name": "backup"}),
    ],
)
def test_recognize_heard_corrects_what_typed_text_would_not(
    recognizer: Recognizer, heard: str, tool: str, arguments: dict[str, Any]
) -> None:
    lists = LiveLists(bots=["backup", "crawler"], schedules=["backup"])
    assert recognizer.recognize(heard, lists=lists) == []
    [match] = recognizer.recognize_heard(heard, lists=lists)
    assert (match.tool, match.source) == (tool, "corrected")
    assert {k: v for k, v in match.arguments.items() if k in arguments} == arguments
    assert 0 < match.confidence < 1.0
    assert match.text != normalize(heard).text  # the corrected wording, for "Did you mean …?"


def test_recognize_heard_leaves_commands_and_chatter_alone(recognizer: Recognizer) -> None:
    lists = LiveLists(bots=["backup"])
    [match] = recognizer.recognize_heard("stop the backup bot", lists=lists)
    assert (match.tool, match.source, match.confidence) == ("bots_stop", "template", 1.0)
    assert recognizer.recognize_heard("the weather was lovely at the seaside yesterday", lists=lists) == []


def test_a_name_nobody_has_is_heard_as_the_name_that_sounds_like_it(recognizer: Recognizer) -> None:
    lists = LiveLists(bots=["backup", "crawler"])
    [typed] = recognizer.recognize("start the mac up bot", lists=lists)
    assert typed.arguments["name"] == "mac up"  # typed text means what it says
    [heard] = recognizer.recognize_heard("start the mac up bot", lists=lists)
    assert (heard.tool, heard.arguments["name"], heard.source) == ("bots_start", "backup", "corrected")
    # nothing sounds like it: the name stays as heard, and the tool will say there is no such bot
    [kept] = recognizer.recognize_heard("start the zebra bot", lists=lists)
    assert (kept.arguments["name"], kept.source) == ("zebra", "template")


@pytest.mark.parametrize(
    ("heard", "tool", "arguments"),
    [
        # words a recogniser adds after the end of speech
        (
            "Every Monday at 9, start the backup bot Thank you very much.",
            "schedules_create",
            {"target": "start the backup bot"},
        ),
        ("Remind me to check the oven in 25 minutes It's", "reminders_create", {"text": "check the oven"}),
        # a reminder that does not exist, and one that sounds like it does
        ("cancelled the reminder to call mom You", "reminders_cancel", {"reminder": "call mom"}),
    ],
)
def test_words_padded_after_a_command_are_dropped(
    recognizer: Recognizer, heard: str, tool: str, arguments: dict[str, Any]
) -> None:
    lists = LiveLists(bots=["backup"], reminders=["call mom", "stretch"])
    [match] = recognizer.recognize_heard(heard, lists=lists)
    assert (match.tool, match.source) == (tool, "corrected")
    assert {k: v for k, v in match.arguments.items() if k in arguments} == arguments
