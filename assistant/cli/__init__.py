"""The ``kommandant`` command line: one module per command group, assembled in ``assistant.cli.main``.

Importing this package loads no command module, so front doors may use ``assistant.cli.console`` alone.
"""

from __future__ import annotations


def main() -> None:
    """Entry point of the ``kommandant`` console script."""
    from assistant.cli.main import main as run

    run()
