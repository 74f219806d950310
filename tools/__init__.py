"""The tool catalog: one definition per tool, from which schemas, templates, dispatch and every fact other
packages need about a tool derive."""

from tools.builtin import BUILTIN_TOOLS, TEMPLATE_DIR, Recurrence, ToolInput, ToolOutput, builtin_catalog
from tools.catalog import Catalog
from tools.definition import Risk, ToolDefinition
from tools.errors import DuplicateToolError, InvalidArgumentsError, ToolError, UnknownToolError
from tools.facts import (
    LIVE_KINDS,
    PRIVATE,
    ArgumentFacts,
    EntityArgument,
    EntityKind,
    Names,
    Private,
    private_digest,
)

__all__ = [
    "BUILTIN_TOOLS",
    "LIVE_KINDS",
    "PRIVATE",
    "TEMPLATE_DIR",
    "ArgumentFacts",
    "Catalog",
    "DuplicateToolError",
    "EntityArgument",
    "EntityKind",
    "InvalidArgumentsError",
    "Names",
    "Private",
    "Recurrence",
    "Risk",
    "ToolDefinition",
    "ToolError",
    "ToolInput",
    "ToolOutput",
    "UnknownToolError",
    "builtin_catalog",
    "private_digest",
]
