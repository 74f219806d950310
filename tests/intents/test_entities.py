"""The kinds of live things (``tools.EntityKind``) are the one list the intents derive theirs from."""

from __future__ import annotations

import dataclasses

from intents import ConversationContext, IntentMatch, LiveLists, Mention, load_templates
from intents.llm import RawToolCall, parse_tool_calls
from intents.templates import LIVE_LISTS
from tools import LIVE_KINDS, EntityKind, builtin_catalog


def test_every_kind_has_its_place() -> None:
    context_fields = {f.name for f in dataclasses.fields(ConversationContext)}
    assert {kind.value for kind in EntityKind} <= context_fields
    assert {kind.plural for kind in LIVE_KINDS} == {f.name for f in dataclasses.fields(LiveLists)}
    assert set(LIVE_LISTS.values()) == set(LIVE_KINDS)


def test_live_lists_and_references_in_the_templates_are_kinds() -> None:
    templates = load_templates()
    assert set(LIVE_LISTS) <= set(templates["lists"])
    references = {
        value["out"]
        for slot_list in templates["lists"].values()
        for value in (slot_list.get("values") or [])
        if isinstance(value, dict) and str(value.get("out", "")).startswith("@")
    }
    assert references <= {f"@{kind.value}" for kind in EntityKind}


def test_live_lists_by_kind() -> None:
    lists = LiveLists(bots=["backup"], schedules=["nightly"], reminders=["call mom"])
    assert [lists.names(kind) for kind in EntityKind] == [["backup"], ["nightly"], ["call mom"], ()]
    assert lists.key() == (("backup",), ("nightly",), ("call mom",))


def test_the_context_observes_what_a_match_mentions() -> None:
    context = ConversationContext()
    context.observe(IntentMatch("anything", {"name": "backup"}, 1.0))
    assert context.key() == (None, None, None, None, None)
    context.observe(IntentMatch("anything", {}, 1.0, mention=Mention(EntityKind.SCHEDULE, "nightly")))
    assert (context.schedule, context.topic, context.get(EntityKind.SCHEDULE)) == (
        "nightly",
        "schedule",
        "nightly",
    )
    copy = context.copy()
    copy.bot = "crawler"
    assert context.bot is None and copy.schedule == "nightly"


def test_llm_matches_mention_what_they_name_too() -> None:
    choice = parse_tool_calls(builtin_catalog(), [RawToolCall("bots_logs", {"name": "crawler"})])
    [match] = choice.matches
    assert match.mention == Mention(EntityKind.BOT, "crawler")
    context = ConversationContext()
    context.observe(match)
    assert (context.bot, context.topic) == ("crawler", EntityKind.BOT)
