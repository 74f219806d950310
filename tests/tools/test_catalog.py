"""The built-in catalog: registration, schemas derived from models, readable validation, templates."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import BaseModel

from intents import load_templates
from tools import (
    BUILTIN_TOOLS,
    Catalog,
    DuplicateToolError,
    InvalidArgumentsError,
    Recurrence,
    Risk,
    ToolDefinition,
    ToolOutput,
    UnknownToolError,
    builtin_catalog,
)
from tools.builtin.memory import MemoryFact, RecalledFact, RecallResult, RememberResult
from tools.builtin.system import CallDescription, DescribeInput, describe_tool, describe_tool_name

EXPECTED = {
    "memory_remember": ("memory", Risk.WRITE, {"fact"}),
    "memory_recall": ("memory", Risk.READ, {"query"}),
    "memory_list": ("memory", Risk.READ, {"limit"}),
    "memory_forget": ("memory", Risk.DANGEROUS, {"query"}),
    "memory_describe": ("memory", Risk.READ, {"tool", "arguments"}),
    "reminders_create": ("reminders", Risk.WRITE, {"text", "due"}),
    "reminders_list": ("reminders", Risk.READ, set()),
    "reminders_cancel": ("reminders", Risk.WRITE, {"reminder"}),
    "knowledge_search": ("knowledge", Risk.READ, {"query", "limit"}),
    "knowledge_add": ("knowledge", Risk.WRITE, {"content", "title"}),
    "knowledge_list": ("knowledge", Risk.READ, {"limit"}),
    "knowledge_ingest": ("knowledge", Risk.WRITE, {"id"}),
    "bots_list": ("bots", Risk.READ, set()),
    "bots_start": ("bots", Risk.WRITE, {"name"}),
    "bots_stop": ("bots", Risk.DANGEROUS, {"name"}),
    "bots_restart": ("bots", Risk.WRITE, {"name"}),
    "bots_status": ("bots", Risk.READ, {"name"}),
    "bots_logs": ("bots", Risk.READ, {"name", "lines"}),
    "bots_describe": ("bots", Risk.READ, {"tool", "arguments"}),
    "schedules_create": (
        "scheduler",
        Risk.WRITE,
        {"target", "when", "name", "timezone", "concurrency", "misfire", "grace_seconds", "command"},
    ),
    "schedules_list": ("scheduler", Risk.READ, set()),
    "schedules_delete": ("scheduler", Risk.DANGEROUS, {"name"}),
    "schedules_run_now": ("scheduler", Risk.WRITE, {"name"}),
    "schedules_enable": ("scheduler", Risk.WRITE, {"name"}),
    "schedules_disable": ("scheduler", Risk.WRITE, {"name"}),
    "schedules_history": ("scheduler", Risk.READ, {"name", "limit"}),
    "scheduler_describe": ("scheduler", Risk.READ, {"tool", "arguments"}),
    "system_status": ("system", Risk.READ, set()),
    "audit_recent": ("system", Risk.READ, {"limit"}),
    "help": ("system", Risk.READ, set()),
    "approvals_list": ("system", Risk.READ, set()),
    "approvals_decide": ("system", Risk.WRITE, {"id", "approve", "reason"}),
    "notion_sync": ("notion", Risk.WRITE, {"full"}),
    "notion_create_page": ("notion", Risk.WRITE, {"parent", "title", "content"}),
    "notion_append": ("notion", Risk.WRITE, {"page", "content"}),
    "slack_post": ("slack", Risk.WRITE, {"channel", "text"}),
}


def test_builtin_catalog_has_exactly_the_public_tools() -> None:
    catalog = builtin_catalog()
    assert catalog.names() == list(EXPECTED)
    for tool in catalog:
        agent, risk, arguments = EXPECTED[tool.name]
        assert (tool.agent, tool.risk) == (agent, risk)
        assert set(tool.input_schema().get("properties", {})) == arguments


def test_builtin_catalog_is_fresh_each_time() -> None:
    first, second = builtin_catalog(), builtin_catalog()
    extra = ToolDefinition("extra_tool", "x", "system", BaseModel, BaseModel)
    first.register(extra)
    assert "extra_tool" in first and "extra_tool" not in second


def test_duplicates_are_refused() -> None:
    catalog = Catalog(BUILTIN_TOOLS)
    with pytest.raises(DuplicateToolError, match="bots_start"):
        catalog.register(catalog.get("bots_start"))
    with pytest.raises(DuplicateToolError):
        Catalog([BUILTIN_TOOLS[0], BUILTIN_TOOLS[0]])


def test_unknown_tool() -> None:
    with pytest.raises(UnknownToolError, match="make_coffee"):
        builtin_catalog().get("make_coffee")


def test_schemas_derive_from_models_with_descriptions() -> None:
    for tool in builtin_catalog():
        assert tool.input_schema() == tool.input_model.model_json_schema()
        assert tool.output_schema() == tool.output_model.model_json_schema()
        assert issubclass(tool.output_model, ToolOutput)
        assert tool.input_model.__doc__ and tool.output_model.__doc__
        for model in (tool.input_model, tool.output_model):
            for name, field in model.model_fields.items():
                assert field.description, f"{model.__name__}.{name} has no description"


def test_validation_errors_are_readable() -> None:
    catalog = builtin_catalog()
    with pytest.raises(InvalidArgumentsError) as info:
        catalog.get("bots_logs").validate_arguments({"name": "crawler", "lines": 0})
    assert str(info.value).startswith("Invalid arguments for bots_logs: lines:")
    with pytest.raises(InvalidArgumentsError, match="fact: Field required"):
        catalog.get("memory_remember").validate_arguments({})
    with pytest.raises(InvalidArgumentsError, match="Extra inputs"):
        catalog.get("bots_list").validate_arguments({"name": "x"})
    with pytest.raises(InvalidArgumentsError, match="timezone"):
        catalog.get("reminders_create").validate_arguments({"text": "x", "due": "2025-06-11T10:00:00"})


def test_huge_arguments_are_validation_errors() -> None:
    catalog = builtin_catalog()
    huge = "x" * 100_000
    for tool, arguments in [
        ("memory_remember", {"fact": huge}),
        ("knowledge_search", {"query": huge}),
        ("knowledge_add", {"content": huge}),
        ("bots_start", {"name": huge}),
        ("approvals_decide", {"id": huge, "approve": True}),
        ("schedules_create", {"target": huge, "when": {"every_seconds": 60}}),
    ]:
        with pytest.raises(InvalidArgumentsError):
            catalog.get(tool).validate_arguments(arguments)


@pytest.mark.parametrize(
    "when",
    [
        {},
        {"cron": "0 9 * * 1", "every_seconds": 60},
        {"every_seconds": 60, "at": "2025-06-11T10:00:00+00:00"},
    ],
)
def test_recurrence_needs_exactly_one(when: dict[str, object]) -> None:
    with pytest.raises(InvalidArgumentsError, match="exactly one of cron, every_seconds or at"):
        builtin_catalog().get("schedules_create").validate_arguments(
            {"target": "start the bot", "when": when}
        )


def test_recurrence_checks_cron() -> None:
    assert Recurrence(cron="30 8  * * 1-5").cron == "30 8 * * 1-5"
    with pytest.raises(ValueError, match="5 fields"):
        Recurrence(cron="0 9 * *")
    with pytest.raises(ValueError, match="hour field"):
        Recurrence(cron="0 nine * * *")
    assert Recurrence(cron="0 9 * * 1").describe() == "every Monday at 9:00"
    assert Recurrence(every_seconds=900).describe() == "every 15 minutes"


def test_summaries_are_one_line_sentences() -> None:
    created = datetime(2025, 6, 11, 10, tzinfo=UTC)
    fact = MemoryFact(id="f1", fact="my editor is neovim", created_at=created)
    assert RememberResult(fact=fact).summary() == "Got it — I'll remember that your editor is neovim."
    recalled = RecalledFact(id="f1", fact="my editor is neovim", created_at=created, score=0.9)
    assert RecallResult(facts=[recalled]).summary() == "Your editor is neovim."
    assert RecallResult(facts=[]).summary() == "I don't remember anything about that."


def test_every_output_model_has_its_own_summary() -> None:
    for tool in builtin_catalog():
        assert "summary" in tool.output_model.__dict__ or any(
            "summary" in base.__dict__ for base in tool.output_model.__mro__[1:-3]
        ), tool.name


def test_every_tool_has_templates() -> None:
    """Every tool but the agents' ``describe`` tools, which only the Kommandant calls (for an approval
    card): no sentence may reach them, so they have no templates and ``help`` leaves them out."""
    templates = load_templates()
    describers = [tool for tool in builtin_catalog() if issubclass(tool.input_model, DescribeInput)]
    assert {tool.agent for tool in describers} == {"memory", "bots", "scheduler"}
    for tool in builtin_catalog():
        intent = templates["intents"].get(tool.name)
        if tool in describers:
            assert intent is None, tool.name
            continue
        assert intent and intent["data"] and intent.get("examples"), tool.name


def test_describe_tools_follow_the_convention() -> None:
    catalog = builtin_catalog()
    for agent in ("bots", "scheduler"):
        assert catalog.get(describe_tool_name(agent)) == describe_tool(agent)
    memory = catalog.get(describe_tool_name("memory"))
    assert memory.risk is Risk.READ and memory.output_model is CallDescription
    assert memory.private == {"arguments"} and memory.result_is_private  # it names remembered facts
