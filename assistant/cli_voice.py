"""CLI: the voice commands: `transcribe`, `listen`, `say`, `models` (issue 6)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``kommandant`` app."""
