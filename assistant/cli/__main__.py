"""``python -m assistant.cli``: the ``kommandant`` command."""

from assistant.cli.main import main

main()
