"""The facts other packages need, read from the built-in tools' definitions."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import Field

from tools import (
    ArgumentFacts,
    Catalog,
    EntityKind,
    Names,
    ToolInput,
    UnknownToolError,
    builtin_catalog,
)

CATALOG = builtin_catalog()

NAMED = {
    "bots_start": ("name", EntityKind.BOT),
    "bots_stop": ("name", EntityKind.BOT),
    "bots_restart": ("name", EntityKind.BOT),
    "bots_status": ("name", EntityKind.BOT),
    "bots_logs": ("name", EntityKind.BOT),
    "schedules_create": ("name", EntityKind.SCHEDULE),
    "schedules_delete": ("name", EntityKind.SCHEDULE),
    "schedules_run_now": ("name", EntityKind.SCHEDULE),
    "schedules_enable": ("name", EntityKind.SCHEDULE),
    "schedules_disable": ("name", EntityKind.SCHEDULE),
    "schedules_history": ("name", EntityKind.SCHEDULE),
    "reminders_cancel": ("reminder", EntityKind.REMINDER),
    "approvals_decide": ("id", EntityKind.APPROVAL),
}


def test_search_queries_and_what_people_keep_are_private() -> None:
    private = {tool.name: tool.private for tool in CATALOG if tool.private}
    assert private == {
        "memory_remember": {"fact"},
        "memory_recall": {"query"},
        "memory_forget": {"query"},
        "memory_describe": {"arguments"},  # the arguments of a forget: what to forget
        "knowledge_search": {"query"},
        "knowledge_add": {"content"},
        "notion_create_page": {"content"},
        "notion_append": {"content"},
    }


def test_results_echoing_private_text_are_private() -> None:
    private = {tool.name for tool in CATALOG if tool.result_is_private}
    memory = {"memory_remember", "memory_recall", "memory_forget", "memory_list", "memory_describe"}
    assert private == {*memory, "knowledge_search", "knowledge_add", "notion_create_page", "notion_append"}
    said = "Got it — I'll remember that your pin is 8642."
    assert CATALOG.get("memory_remember").auditable_result(said) == f"(private: {len(said)} characters)"
    assert CATALOG.get("system_status").auditable_result("All 3 agents are up.") == "All 3 agents are up."


def test_which_argument_names_a_live_thing() -> None:
    named = {tool.name: (tool.entity.argument, tool.entity.kind) for tool in CATALOG if tool.entity}
    assert named == NAMED
    assert [tool.name for tool in CATALOG.creating(EntityKind.SCHEDULE)] == ["schedules_create"]
    assert all(not CATALOG.creating(kind) for kind in EntityKind if kind is not EntityKind.SCHEDULE)


def test_free_text_is_every_string_that_names_nothing() -> None:
    for tool in CATALOG:
        assert not (tool.entity and tool.entity.argument in tool.free_text), tool.name
    assert CATALOG.get("memory_remember").free_text == {"fact"}
    assert CATALOG.get("knowledge_add").free_text == {"content", "title"}
    assert CATALOG.get("schedules_create").free_text == {"target", "timezone"}
    assert CATALOG.get("approvals_decide").free_text == {"reason"}
    assert not CATALOG.get("bots_logs").free_text and not CATALOG.get("reminders_cancel").free_text


def test_one_tool_decides_approvals() -> None:
    assert [tool.name for tool in CATALOG if tool.decides_approvals] == ["approvals_decide"]
    assert CATALOG.approval_decider() is CATALOG.get("approvals_decide")
    with pytest.raises(UnknownToolError):
        Catalog().approval_decider()


def test_memory_tools_embed_text() -> None:
    assert {tool.name for tool in CATALOG.by_agent("memory") if tool.embeds} == {
        "memory_remember",
        "memory_recall",
    }
    assert CATALOG.embeds_text(["reminders", "memory"])
    assert not CATALOG.embeds_text(["reminders", "system", "bots", "scheduler"])


def test_knowledge_tools_embed_text() -> None:
    assert CATALOG.embeds_text(["knowledge"])


def test_a_tool_names_one_live_thing_at_most() -> None:
    class Both(ToolInput):
        """Two names."""

        bot: Annotated[str, Names(EntityKind.BOT)] = Field(description="A bot.")
        schedule: Annotated[str, Names(EntityKind.SCHEDULE)] = Field(description="A schedule.")

    with pytest.raises(ValueError, match="more than one"):
        ArgumentFacts.of(Both)


def test_kinds_say_how_they_are_named() -> None:
    assert {kind: kind.live_list for kind in EntityKind} == {
        EntityKind.BOT: "bot",
        EntityKind.SCHEDULE: "schedule",
        EntityKind.REMINDER: "reminder_name",
        EntityKind.APPROVAL: None,
    }
    assert [kind.named_by for kind in EntityKind] == ["name", "name", "words", "id"]
