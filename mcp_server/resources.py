"""MCP resources: memory facts, knowledge entries, recent audit, agent status, approvals waiting, and one
bot by name (a template whose name completes from the registered bots).

Every resource is read through its catalog read tool as the caller (``mcp_server.host``), so the same
policy, per-user visibility and audit apply as for a tool call: ``kommandant://memory`` shows the
caller's own facts only.
"""

from __future__ import annotations

import json
from typing import Any

from mcp.server.fastmcp import FastMCP

from mcp_server.completions import BOTS, Completions
from mcp_server.host import Host, read_as_caller
from tools.builtin import approvals as approval_tools
from tools.builtin import bots as bot_tools
from tools.builtin import knowledge as knowledge_tools
from tools.builtin import memory as memory_tools
from tools.builtin import system as system_tools

JSON = "application/json"
BOT_TEMPLATE = "kommandant://bots/{name}"
APPROVALS_URI = "kommandant://approvals"
AGENTS_URI = "kommandant://agents"
KNOWLEDGE_URI = "kommandant://knowledge"


def register_resources(server: FastMCP[Any], host: Host, completions: Completions) -> None:
    """Add the resources to ``server``; each reads fresh data at every ``resources/read`` as the caller
    that ``host`` names. The live names of templates' arguments are registered with ``completions``."""

    @server.resource(
        "kommandant://memory", name="memory", title="Remembered facts", mime_type=JSON,
        description="The facts Kommandant remembers about you, newest first.",
    )  # fmt: skip
    async def memory() -> str:
        listed = await read_as_caller(host, memory_tools.LIST, {"limit": 200})
        return _dump({"user": host.caller().user, **listed})

    @server.resource(
        KNOWLEDGE_URI, name="knowledge", title="Knowledge base", mime_type=JSON,
        description="The documents in the knowledge base, newest first. Subscribe to hear when one is "
        "added or removed.",
    )  # fmt: skip
    async def knowledge() -> str:
        return _dump(await read_as_caller(host, knowledge_tools.LIST, {"limit": 200}))

    @server.resource(
        "kommandant://audit", name="audit", title="Recent audit trail", mime_type=JSON,
        description="Your 50 newest entries of the tamper-evident audit trail (an admin: everyone's).",
    )  # fmt: skip
    async def audit() -> str:
        return _dump(await read_as_caller(host, system_tools.AUDIT_RECENT, {"limit": 50}))

    @server.resource(
        AGENTS_URI, name="agents", title="Agent status", mime_type=JSON,
        description="Which agents are alive, how many replicas serve them, and their tools. Subscribe "
        "to hear when a replica starts or stops.",
    )  # fmt: skip
    async def agents() -> str:
        return _dump(await read_as_caller(host, system_tools.STATUS, {}))

    @server.resource(
        APPROVALS_URI, name="approvals", title="Approvals waiting", mime_type=JSON,
        description="Dangerous calls waiting for a decision: yours (an admin: everyone's). Subscribe to "
        "hear when one appears or is decided.",
    )  # fmt: skip
    async def approvals() -> str:
        return _dump(await read_as_caller(host, approval_tools.LIST, {}))

    @server.resource(
        BOT_TEMPLATE, name="bot", title="One bot", mime_type=JSON,
        description="One bot's process state: running or not, pid, uptime, memory, CPU, restarts.",
    )  # fmt: skip
    async def bot(name: str) -> str:
        return _dump(await read_as_caller(host, bot_tools.STATUS, {"name": name}))

    completions.add(BOT_TEMPLATE, "name", BOTS)


def _dump(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2)
