"""MCP resources (knowledge entries, memory facts, recent audit, agent status) and prompts.

Every resource is read through its catalog read tool as the caller (``assistant.reads``), so the same
policy, per-user visibility and audit apply as for a tool call: ``kommandant://memory`` shows the
caller's own facts only. Prompts name tools by their definitions, never by a string of their own.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Protocol

from mcp.server.fastmcp import FastMCP

from assistant.events import Turn
from assistant.reads import read_tool
from mcp_server.auth import Caller
from tools import ToolDefinition
from tools.builtin import approvals as approval_tools
from tools.builtin import knowledge as knowledge_tools
from tools.builtin import memory as memory_tools
from tools.builtin import reminders as reminder_tools
from tools.builtin import system as system_tools

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
        listed = await _read_tool(host, memory_tools.LIST, {"limit": 200})
        return _dump({"user": host.caller().user, **listed})

    @server.resource(
        "kommandant://knowledge", name="knowledge", title="Knowledge base", mime_type=JSON,
        description="The documents in the knowledge base, newest first.",
    )  # fmt: skip
    async def knowledge() -> str:
        return _dump(await _read_tool(host, knowledge_tools.LIST, {"limit": 200}))

    @server.resource(
        "kommandant://audit", name="audit", title="Recent audit trail", mime_type=JSON,
        description="Your 50 newest entries of the tamper-evident audit trail (an admin: everyone's).",
    )  # fmt: skip
    async def audit() -> str:
        return _dump(await _read_tool(host, system_tools.AUDIT_RECENT, {"limit": 50}))

    @server.resource(
        "kommandant://agents", name="agents", title="Agent status", mime_type=JSON,
        description="Which agents are alive, how many replicas serve them, and their tools.",
    )  # fmt: skip
    async def agents() -> str:
        return _dump(await _read_tool(host, system_tools.STATUS, {}))


def register_prompts(server: FastMCP[Any]) -> None:
    """Add prompts for common tasks: each tells the assistant which Kommandant tools to use."""

    remember_tool, recall_tool = memory_tools.REMEMBER.name, memory_tools.RECALL.name
    status_tool, audit_tool = system_tools.STATUS.name, system_tools.AUDIT_RECENT.name
    approvals_tool, search_tool = approval_tools.LIST.name, knowledge_tools.SEARCH.name
    create_reminder, list_reminders = reminder_tools.CREATE.name, reminder_tools.LIST.name

    @server.prompt(name="remember", title="Remember a fact", description="Have Kommandant remember a fact.")
    def remember(fact: str) -> str:
        return f"Use Kommandant's {remember_tool} tool to remember this fact, then confirm it: {fact}"

    @server.prompt(name="recall", title="What do you remember", description="Recall facts about a topic.")
    def recall(topic: str) -> str:
        return (
            f"Use Kommandant's {recall_tool} tool with the query {topic!r} and answer from what it returns. "
            "Say so plainly if nothing is remembered."
        )

    @server.prompt(
        name="status_report", title="Status report", description="Health, approvals, recent activity."
    )
    def status_report() -> str:
        return (
            f"Give me a short status report of Kommandant: call {status_tool} (which agents are up), "
            f"{approvals_tool} (what waits for a decision) and {audit_tool} with limit 10 (what happened), "
            "then summarise in at most five bullet points."
        )

    @server.prompt(
        name="plan_reminders", title="Plan reminders", description="Turn a to-do list into reminders."
    )
    def plan_reminders(todo: str) -> str:
        return (
            f"Create one Kommandant reminder per item of this to-do list with {create_reminder}, choosing "
            "sensible times today unless an item says otherwise; then list them with "
            f"{list_reminders}:\n{todo}"
        )

    @server.prompt(name="search_knowledge", title="Answer from the knowledge base")
    def search_knowledge(question: str) -> str:
        return (
            f"Answer this question from Kommandant's knowledge base: call {search_tool} with it, cite "
            f"the sources you use, and say when the knowledge base has no answer.\n\nQuestion: {question}"
        )


async def _read_tool(host: Host, tool: ToolDefinition, arguments: dict[str, Any]) -> dict[str, Any]:
    """Run a read tool as the caller and return its structured result; ``ToolReadError`` (its sentence,
    which the MCP client sees) if there is none."""
    caller = host.caller()
    turn = Turn(text=f"[mcp resource] {tool.name}", user=caller.user, channel="mcp", role=caller.role)
    return await read_tool(host.kommandant, tool, arguments, turn)


def _dump(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2)
