"""The tool catalog: one definition per tool, from which schemas, templates and dispatch derive."""

from tools.builtin import BUILTIN_TOOLS, TEMPLATE_DIR, Recurrence, ToolInput, ToolOutput, builtin_catalog
from tools.catalog import Catalog
from tools.definition import Risk, ToolDefinition
from tools.errors import DuplicateToolError, InvalidArgumentsError, ToolError, UnknownToolError

__all__ = [
    "BUILTIN_TOOLS",
    "TEMPLATE_DIR",
    "Catalog",
    "DuplicateToolError",
    "InvalidArgumentsError",
    "Recurrence",
    "Risk",
    "ToolDefinition",
    "ToolError",
    "ToolInput",
    "ToolOutput",
    "UnknownToolError",
    "builtin_catalog",
]
