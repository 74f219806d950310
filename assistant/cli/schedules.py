"""``kommandant schedules …`` (read and pause schedules through their tools) and ``kommandant scheduler``
(a process that only fires due schedules: add replicas to scale out; each occurrence still runs once)."""

from __future__ import annotations

import asyncio
import json
import signal
from typing import TYPE_CHECKING, Annotated, Any

import typer

from assistant.cli.console import RoleOption, console, fail, load_settings, role_of, run

if TYPE_CHECKING:
    from tools import ToolDefinition

app = typer.Typer(
    help="Schedules: commands that run on a cron, an interval or once. Create them by saying so "
    '(`kommandant ask "every monday at nine start the backup bot"`).',
    no_args_is_help=True,
)
UserOption = Annotated[str, typer.Option("--user", help="Who is asking (whose schedules a non-admin sees).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the tool's structured result as JSON.")]
NameArgument = Annotated[str, typer.Argument(help="The schedule's name.")]


def _call(tool: str, arguments: dict[str, Any], user: str, role: str, as_json: bool) -> None:
    """Call one schedule tool through the Kommandant (policy and audit as for any front door), print it."""
    who = role_of(role)
    settings = load_settings()

    async def go() -> tuple[str, bool, dict[str, Any] | None]:
        from assistant.events import ReplyDelta, ToolFinished, Turn
        from assistant.runtime import Runtime

        async with Runtime(settings) as rt:
            assert rt.kommandant is not None and rt.services is not None
            definition: ToolDefinition = rt.services.catalog.get(tool)
            turn = Turn(text=f"kommandant schedules {tool}", user=user, channel="cli", role=who)
            texts, ok, structured = [], True, None
            async for event in rt.kommandant.run_tool(definition, arguments, turn):
                if isinstance(event, ToolFinished):
                    ok, structured = event.ok, event.structured
                elif isinstance(event, ReplyDelta):
                    texts.append(event.text)
            return " ".join(texts), ok and structured is not None, structured

    text, ok, structured = run(go())
    if not ok:
        fail(text or "The scheduler did not answer.", code=1)
    if as_json:
        typer.echo(json.dumps(structured, ensure_ascii=False, default=str))
        return
    console.print(text, highlight=False, soft_wrap=True)


@app.command("list")
def list_(user: UserOption = "local", role: RoleOption = "admin", as_json: JsonOption = False) -> None:
    """List the schedules: the command in words, when each runs next and last, enabled or not."""
    from tools.builtin import schedules

    _call(schedules.LIST.name, {}, user, role, as_json)


@app.command()
def show(name: NameArgument, user: UserOption = "local", role: RoleOption = "admin") -> None:
    """Show one schedule in full (JSON): its command as tool calls, time zone, limits, next run."""
    from tools.builtin import schedules

    who = role_of(role)
    settings = load_settings()

    async def go() -> dict[str, Any] | None:
        from assistant.events import ToolFinished, Turn
        from assistant.runtime import Runtime

        async with Runtime(settings) as rt:
            assert rt.kommandant is not None
            turn = Turn(text=f"kommandant schedules show {name}", user=user, channel="cli", role=who)
            async for event in rt.kommandant.run_tool(schedules.LIST, {}, turn):
                if isinstance(event, ToolFinished) and event.ok and event.structured:
                    return next(
                        (s for s in event.structured["schedules"] if s["name"].lower() == name.lower()), None
                    )
        return None

    found = run(go())
    if found is None:
        fail(f"There is no schedule called {name!r}.", code=1)
    typer.echo(json.dumps(found, ensure_ascii=False, indent=2, default=str))


@app.command()
def enable(name: NameArgument, user: UserOption = "local", role: RoleOption = "admin") -> None:
    """Enable a paused schedule; it runs from its next time on."""
    from tools.builtin import schedules

    _call(schedules.ENABLE.name, {"name": name}, user, role, False)


@app.command()
def disable(name: NameArgument, user: UserOption = "local", role: RoleOption = "admin") -> None:
    """Pause a schedule until it is enabled again."""
    from tools.builtin import schedules

    _call(schedules.DISABLE.name, {"name": name}, user, role, False)


@app.command()
def history(
    name: NameArgument,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=500, help="How many runs.")] = 20,
    user: UserOption = "local",
    role: RoleOption = "admin",
    as_json: JsonOption = False,
) -> None:
    """Show a schedule's latest runs, newest first: when each was due and how it ended."""
    from tools.builtin import schedules

    _call(schedules.HISTORY.name, {"name": name, "limit": limit}, user, role, as_json)


def scheduler() -> None:
    """Fire due schedules from this process only (no web server). Run any number of replicas on one
    database: each occurrence runs once. Ctrl-C stops."""
    settings = load_settings()

    async def go() -> None:
        from assistant.runtime import Runtime

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with Runtime(settings, scheduler=True):
            console.print("Firing due schedules; Ctrl-C stops.")
            await stop.wait()
        console.print("Stopped.")

    run(go())


def register(app_: typer.Typer) -> None:
    """Add ``schedules`` and ``scheduler`` to the command line."""
    app_.add_typer(app, name="schedules", help="Schedules: list, show, enable, disable, history.")
    app_.command()(scheduler)
