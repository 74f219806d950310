"""The built-in tools, one module per domain, with their sentence templates in YAML beside them."""

from __future__ import annotations

from pathlib import Path

from tools.builtin import approvals, bots, knowledge, memory, notion, reminders, schedules, slack, system
from tools.builtin.base import ToolInput, ToolOutput
from tools.builtin.schedules import Recurrence
from tools.catalog import Catalog
from tools.definition import ToolDefinition

__all__ = ["BUILTIN_TOOLS", "TEMPLATE_DIR", "Recurrence", "ToolInput", "ToolOutput", "builtin_catalog"]

TEMPLATE_DIR = Path(__file__).parent
"""The folder holding the built-in tools' sentence templates (``*.yaml``)."""

BUILTIN_TOOLS: tuple[ToolDefinition, ...] = (
    *memory.TOOLS,
    *reminders.TOOLS,
    *knowledge.TOOLS,
    *bots.TOOLS,
    *schedules.TOOLS,
    *system.TOOLS,
    *approvals.TOOLS,
    *notion.TOOLS,
    *slack.TOOLS,
)


def builtin_catalog() -> Catalog:
    """A fresh catalog holding every built-in tool."""
    return Catalog(BUILTIN_TOOLS)
