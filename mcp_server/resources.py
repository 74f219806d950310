"""MCP resources (knowledge entries, memory facts, recent audit, agent status) and prompts.

Audit and agent status are read through their catalog tools, so the same policy and audit apply as for a
tool call; memory facts and knowledge entries are plain listings scoped to the caller.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Protocol

from mcp.server.fastmcp import FastMCP

from assistant.events import Failed, ToolFinished, Turn
from mcp_server.auth import Caller
from storage.listing import knowledge_entries, memory_facts

if TYPE_CHECKING:
    from assistant.kommandant import Kommandant


class Host(Protocol):
    """What the resources need of the MCP server: the running Kommandant and who is calling."""

    @property
    def kommandant(self) -> Kommandant: ...

    def caller(self) -> Caller: ...


JSON = "application/json"


def register_resources(server: FastMCP[Any], host: Host) -> None:
    """Add the resources to ``server``; each reads fresh data at every ``resources/read`` as the caller
    that ``host`` names."""

    @server.resource(
        "kommandant://memory", name="memory", title="Remembered facts", mime_type=JSON,
        description="The facts Kommandant remembers about you, newest first.",
    )  # fmt: skip
    async def memory() -> str:
        caller = host.caller()
        sessionmaker = host.kommandant.services.database.sessionmaker
        facts = await memory_facts(sessionmaker, caller.user)
        return _dump({"user": caller.user, "facts": [f.model_dump(mode="json") for f in facts]})

    @server.resource(
        "kommandant://knowledge", name="knowledge", title="Knowledge base", mime_type=JSON,
        description="The documents in the knowledge base, newest first.",
    )  # fmt: skip
    async def knowledge() -> str:
        host.caller()  # only callers with a valid identity read it
        entries = await knowledge_entries(host.kommandant.services.database.sessionmaker)
        return _dump({"entries": [e.model_dump(mode="json") for e in entries]})

    @server.resource(
        "kommandant://audit", name="audit", title="Recent audit trail", mime_type=JSON,
        description="The 50 newest entries of the tamper-evident audit trail.",
    )  # fmt: skip
    async def audit() -> str:
        return _dump(await _read_tool(host, "audit_recent", {"limit": 50}))

    @server.resource(
        "kommandant://agents", name="agents", title="Agent status", mime_type=JSON,
        description="Which agents are alive, how many replicas serve them, and their tools.",
    )  # fmt: skip
    async def agents() -> str:
        return _dump(await _read_tool(host, "system_status", {}))


def register_prompts(server: FastMCP[Any]) -> None:
    """Add prompts for common tasks: each tells the assistant which Kommandant tools to use."""

    @server.prompt(name="remember", title="Remember a fact", description="Have Kommandant remember a fact.")
    def remember(fact: str) -> str:
        return f"Use Kommandant's memory_remember tool to remember this fact, then confirm it: {fact}"

    @server.prompt(name="recall", title="What do you remember", description="Recall facts about a topic.")
    def recall(topic: str) -> str:
        return (
            f"Use Kommandant's memory_recall tool with the query {topic!r} and answer from what it returns. "
            "Say so plainly if nothing is remembered."
        )

    @server.prompt(
        name="status_report", title="Status report", description="Health, approvals, recent activity."
    )
    def status_report() -> str:
        return (
            "Give me a short status report of Kommandant: call system_status (which agents are up), "
            "approvals_list (what waits for a decision) and audit_recent with limit 10 (what happened), "
            "then summarise in at most five bullet points."
        )

    @server.prompt(
        name="plan_reminders", title="Plan reminders", description="Turn a to-do list into reminders."
    )
    def plan_reminders(todo: str) -> str:
        return (
            "Create one Kommandant reminder per item of this to-do list with reminders_create, choosing "
            f"sensible times today unless an item says otherwise; then list them with reminders_list:\n{todo}"
        )

    @server.prompt(name="search_knowledge", title="Answer from the knowledge base")
    def search_knowledge(question: str) -> str:
        return (
            f"Answer this question from Kommandant's knowledge base: call knowledge_search with it, cite "
            f"the sources you use, and say when the knowledge base has no answer.\n\nQuestion: {question}"
        )


async def _read_tool(server: Host, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Run a read tool as the caller and return its structured result; raise with its sentence if not."""
    caller = server.caller()
    tool = server.kommandant.services.catalog.get(name)
    turn = Turn(text=f"[mcp resource] {name}", user=caller.user, channel="mcp", role=caller.role)
    problem, structured = f"{name} did not run.", None
    async for event in server.kommandant.run_tool(tool, arguments, turn):
        if isinstance(event, ToolFinished) and event.ok:
            structured = event.structured
        elif isinstance(event, Failed):
            problem = event.message
    if structured is not None:
        return structured
    raise ValueError(problem)


def _dump(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2)
