"""CLI: the MCP commands: `mcp`, `tokens create|list|revoke` (issue 8)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``kommandant`` app."""
