"""``kommandant bus dlq list|replay|purge``: see, replay and delete dead-lettered calls on RabbitMQ."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from assistant.cli.console import console, fail, load_settings, run
from settings import Settings

if TYPE_CHECKING:
    from bus import DeadLetter, RabbitBus

T = TypeVar("T")

app = typer.Typer(help="The message bus.", no_args_is_help=True)
dlq_app = typer.Typer(
    help="Dead letters: calls that failed after their retries, expired, or could not be read.",
    no_args_is_help=True,
)
app.add_typer(dlq_app, name="dlq")

IdsArg = Annotated[list[str] | None, typer.Argument(help="Ids of dead letters (from `dlq list`).")]
AllOpt = Annotated[bool, typer.Option("--all", help="Every dead letter.")]


def _with_bus(settings: Settings, action: Callable[[RabbitBus], Awaitable[T]]) -> T:
    """Run ``action`` on a started RabbitBus; bus errors become one sentence."""
    from bus import BusError, RabbitBus, create_bus

    bus = create_bus(settings)
    if not isinstance(bus, RabbitBus):
        fail(
            "No broker is configured (KOMMANDANT_AMQP_URL is unset). The in-process bus keeps its dead "
            "letters in the memory of the process that runs it, so this command cannot see them."
        )

    async def go() -> T:
        async with bus:
            return await action(bus)

    try:
        return run(go())
    except BusError as err:
        fail(str(err))


def _selection(ids: list[str] | None, everything: bool, verb: str) -> list[str] | None:
    if not ids and not everything:
        fail(f"Name the dead letters to {verb} (ids from `kommandant bus dlq list`), or pass --all.")
    if ids and everything:
        fail("Give ids or --all, not both.")
    return None if everything else list(ids or [])


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def _row(letter: DeadLetter) -> list[str]:
    tool = letter.call.tool if letter.call else "(unreadable)"
    return [
        letter.id,
        letter.agent or "-",
        tool,
        str(letter.attempts),
        _when(letter.dead_lettered_at),
        letter.reason,
    ]


@dlq_app.command("list")
def dlq_list(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Show at most this many.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Show dead letters, oldest first, without removing them."""
    letters = _with_bus(load_settings(), lambda bus: bus.dead_letters(limit))
    if as_json:
        for letter in letters:
            typer.echo(json.dumps(letter.model_dump(mode="json", by_alias=True, exclude_none=True)))
        return
    if not letters:
        console.print("No dead letters.")
        return
    from rich.table import Table

    table = Table("id", "agent", "tool", "attempts", "dead-lettered (UTC)", "reason")
    for letter in letters:
        table.add_row(*_row(letter))
    console.print(table)


@dlq_app.command("replay")
def dlq_replay(ids: IdsArg = None, everything: AllOpt = False) -> None:
    """Send dead-lettered calls to their agents again (attempt 1, fresh deadline); results land in the
    result store under the call's idempotency key."""
    selected = _selection(ids, everything, "replay")
    count = _with_bus(load_settings(), lambda bus: bus.replay(selected))
    console.print(f"Replayed {count} dead letter{'s' if count != 1 else ''}.")


@dlq_app.command("purge")
def dlq_purge(
    ids: IdsArg = None,
    everything: AllOpt = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete dead letters for good."""
    selected = _selection(ids, everything, "purge")
    what = "every dead letter" if selected is None else f"{len(selected)} dead letter(s)"
    if not yes and not typer.confirm(f"Delete {what}?"):
        raise typer.Exit(1)
    count = _with_bus(load_settings(), lambda bus: bus.purge(selected))
    console.print(f"Deleted {count} dead letter{'s' if count != 1 else ''}.")
