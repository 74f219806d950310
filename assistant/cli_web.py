"""CLI: the web chat commands: `users add|list|remove` (issue 5)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``kommandant`` app."""
