"""CLI: the knowledge commands: `ingest`, `reembed` (issue 7)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``kommandant`` app."""
