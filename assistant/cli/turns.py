"""CLI front doors: ``ask`` (one turn), ``parse`` (only the match), ``chat`` (a terminal chat), ``worker``.

Every turn here, typed or spoken, goes through ``Kommandant.handle`` and is shown by one terminal
renderer (``Terminal``), which also asks the person at the keyboard to decide approvals.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from assistant.cli.console import RoleOption, console, err_console, fail, load_settings, role_of, run
from assistant.events import (
    ApprovalRequired,
    ApprovalResolved,
    Event,
    Failed,
    Heard,
    IntentRecognized,
    ReplyDone,
    Role,
    ToolFinished,
    ToolStarted,
    Turn,
)
from assistant.result import TurnResult, collect

if TYPE_CHECKING:
    from assistant.kommandant import Kommandant
    from intents import LiveLists


def parse(
    text: Annotated[
        str, typer.Argument(help="The utterance, or '-' to read one utterance per line from stdin.")
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (one line per utterance with '-').")
    ] = False,
    offline: Annotated[
        bool,
        typer.Option(
            "--offline", help="Templates only: no database, so no live bot, schedule or reminder names."
        ),
    ] = False,
    heard: Annotated[
        bool,
        typer.Option("--heard", help="Read it as a speech transcript: misheard commands are corrected."),
    ] = False,
    user: Annotated[str, typer.Option(help="Whose reminders count as live names.")] = "local",
) -> None:
    """Print what an utterance means: [{"tool", "arguments", "confidence", "source"}], [] for no match.

    It answers what a turn would: live names (bots, schedules, your reminders) come from the configured
    or embedded database unless --offline.
    """
    settings = load_settings()
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from intents import Recognizer
    from tools import builtin_catalog
    from voice import normalize_transcript

    recognizer = Recognizer(builtin_catalog(), timezone=settings.timezone)
    lists = None if offline else run(_live_lists(settings, user))
    recognize = recognizer.recognize_heard if heard else recognizer.recognize
    lines = (line.rstrip("\n") for line in sys.stdin) if text == "-" else iter([text])
    for line in lines:
        now = datetime.now(ZoneInfo(settings.timezone))
        said = normalize_transcript(line) if heard else line  # as a voice turn reads a transcript
        matches = [m.to_json() for m in recognize(said, lists=lists, now=now)]
        if as_json or text == "-":
            sys.stdout.write(json.dumps(matches, ensure_ascii=False) + "\n")
            sys.stdout.flush()
        elif not matches and (chat := recognizer.chat(line)) is not None:
            console.print(f"[yellow]No command: {chat.kind}.[/] The reply: {escape(chat.reply)}")
        elif not matches:
            console.print("[yellow]No command recognised.[/] Try: " + "; ".join(recognizer.suggest(line)))
        else:
            for m in matches:
                console.print(
                    f"[bold]{m['tool']}[/] {escape(json.dumps(m['arguments'], ensure_ascii=False))} "
                    f"(confidence {m['confidence']:.2f}, {m['source']})"
                )


async def _live_lists(settings: Any, user: str) -> LiveLists:
    from assistant.kommandant import live_lists
    from storage import Database

    async with Database.from_settings(settings) as database:
        return await live_lists(database.sessionmaker, user)


def _print_event(event: Event | Heard) -> None:
    if isinstance(event, Heard):
        console.print(f"[bold]you>[/] {escape(event.text or '…')}")
    elif isinstance(event, IntentRecognized):
        err_console.print(f"[dim]→ {event.tool} {escape(json.dumps(event.arguments, ensure_ascii=False))}[/]")
    elif isinstance(event, ApprovalRequired):
        err_console.print(
            f"[yellow]⏸ {event.tool} needs approval ({event.approval_id[:8]}); "
            f"decide before {event.expires_at:%H:%M:%S} UTC.[/]"
        )
    elif isinstance(event, ApprovalResolved):
        err_console.print(f"[dim]approval {event.approval_id[:8]}: {event.status}[/]")
    elif isinstance(event, ToolStarted):
        err_console.print(f"[dim]⚙ {event.agent}.{event.tool}…[/]")
    elif isinstance(event, ToolFinished):
        mark = "[green]✓[/]" if event.ok else "[red]✗[/]"
        err_console.print(f"[dim]{mark} {event.tool} in {event.duration_ms:.1f} ms[/]")
    elif isinstance(event, Failed):
        pass  # the reply says it
    elif isinstance(event, ReplyDone):
        console.print(escape(event.text), highlight=False)


@dataclass(frozen=True, slots=True)
class Terminal:
    """The terminal as a front door: who is at the keyboard, and whether to print events as they come.

    ``run`` shows a turn's events (typed or spoken) and folds them into a ``TurnResult``; an approval is
    asked at the keyboard when there is one, else the turn waits for another channel to decide.
    """

    kommandant: Kommandant
    user: str
    role: Role
    channel: str
    thread: str | None = None
    show: bool = True

    def turn(self, text: str) -> Turn:
        """A typed turn from this person."""
        return Turn(text=text, user=self.user, channel=self.channel, thread=self.thread, role=self.role)

    async def run(self, events: AsyncIterator[Event | Heard]) -> TurnResult:
        """Show and fold one turn's events."""
        return await collect(events, self._on_event)

    async def _on_event(self, event: Event | Heard) -> None:
        if self.show:
            _print_event(event)
            if isinstance(event, ToolFinished) and event.ok:
                self._print_table(event)
        if isinstance(event, ApprovalRequired):
            await self._confirm(event)

    def _print_table(self, event: ToolFinished) -> None:
        """A result its tool draws as a table (a bots status), as a terminal table."""
        table = self.kommandant.services.catalog.get(event.tool).result_table(event.structured)
        if table is None:
            return
        from rich.table import Table
        from rich.text import Text

        drawn = Table(*table.columns)
        for row in table.rows:
            drawn.add_row(*(Text(cell) for cell in row))
        console.print(drawn)

    async def _confirm(self, event: ApprovalRequired) -> None:
        if not sys.stdin.isatty():
            err_console.print(
                f"Waiting for approval {event.approval_id} from the web chat or another channel…"
            )
            return
        answer = await asyncio.to_thread(input, f"Run {event.tool} {json.dumps(event.arguments)}? [y/N] ")
        await self.kommandant.decide(
            event.approval_id,
            approve=answer.strip().lower() in {"y", "yes"},
            user=self.user,
            role=self.role,
            channel=self.channel,
            thread=self.thread,
        )


def ask(
    text: Annotated[
        str | None, typer.Argument(help='What to ask, e.g. "remind me to stretch in an hour".')
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print intents, tools, results and reply as JSON.")
    ] = False,
    user: Annotated[str, typer.Option(help="Who is asking.")] = "local",
    role: RoleOption = "admin",
    audio: Annotated[
        Path | None, typer.Option("--audio", help="Say it instead: a recording (WAV, FLAC, OGG, MP3).")
    ] = None,
) -> None:
    """Run one turn and print the reply."""
    settings = load_settings()
    if (text is None) == (audio is None):
        fail("Give the command as text or as --audio FILE (one of the two).")
    who = role_of(role)

    async def go() -> dict[str, Any]:
        from assistant.runtime import Runtime

        async with Runtime(settings) as rt:
            assert rt.kommandant is not None
            terminal = Terminal(
                rt.kommandant, user, who, channel="cli" if audio is None else "voice", show=not as_json
            )
            if audio is None:
                turn = terminal.turn(text or "")
                result = await terminal.run(rt.kommandant.handle(turn))
                return {"text": turn.text, **result.model_dump(mode="json")}
            result = await _spoken_turn(terminal, settings, audio)
            return {"text": result.heard, **result.model_dump(mode="json")}

    result = run(go())
    if as_json:
        sys.stdout.write(json.dumps(result, ensure_ascii=False, default=str) + "\n")


async def _spoken_turn(terminal: Terminal, settings: Any, audio: Path) -> TurnResult:
    """``ask --audio``: the spoken entrance (transcript -> turn, read-back, approvals) on a recording."""
    from assistant.speech import VoiceTurns
    from voice import VoiceError

    voice = VoiceTurns(settings, terminal.kommandant)
    try:
        samples = await voice.decode(audio)
        transcript = await voice.transcribe(samples, user=terminal.user)
    except VoiceError as err:
        fail(str(err))
    events = voice.handle(
        transcript, user=terminal.user, role=terminal.role, channel=terminal.channel, thread=terminal.thread
    )
    return await terminal.run(events)


def chat(
    user: Annotated[str, typer.Option(help="Who is chatting.")] = "local", role: RoleOption = "admin"
) -> None:
    """A terminal chat. Reminders appear as they fall due. Ctrl-D or 'exit' ends it."""
    settings = load_settings()
    who = role_of(role)

    async def go() -> None:
        from agents import fired_topic
        from assistant.runtime import Runtime

        async with Runtime(settings, warm_embeddings=True) as rt:
            assert rt.kommandant is not None and rt.services is not None
            terminal = Terminal(rt.kommandant, user, who, channel="cli")
            console.print("[bold]Kommandant[/] — type a command, 'exit' to leave.")
            async with rt.services.bus.subscribe(fired_topic("cli")) as fired:
                notifier = asyncio.create_task(_notify(fired, user))
                try:
                    while True:
                        try:
                            line = await asyncio.to_thread(input, "you> ")
                        except EOFError:
                            break
                        if line.strip().lower() in {"exit", "quit"}:
                            break
                        await terminal.run(rt.kommandant.handle(terminal.turn(line)))
                finally:
                    notifier.cancel()

    run(go())


async def _notify(fired: Any, user: str) -> None:
    async for event in fired:
        if event.payload.get("user") == user:
            console.print(f"\n[bold magenta]⏰ Reminder:[/] {escape(event.payload.get('text', ''))}")


def worker(
    agents: Annotated[
        list[str] | None, typer.Argument(help="Agents to serve, e.g. memory reminders (or 'all').")
    ] = None,
    mcp: Annotated[
        list[str] | None,
        typer.Option(
            "--mcp",
            help='Attach an outside MCP server as an agent: a command ("npx -y @scope/server") or an '
            "http(s) URL; its tools join the catalog as <server>__<tool>. Repeatable.",
        ),
    ] = None,
    mcp_name: Annotated[
        str | None,
        typer.Option("--mcp-name", help="Agent name for a single --mcp server (default: its own)."),
    ] = None,
) -> None:
    """Serve agents from RabbitMQ (distributed mode); run any number of replicas. Ctrl-C drains and stops."""
    settings = load_settings()
    if settings.amqp_url is None:
        fail(
            "kommandant worker serves agents over RabbitMQ: set KOMMANDANT_AMQP_URL. "
            "In embedded mode `kommandant up` runs every agent in its own process already."
        )
    from agents import BUILTIN_AGENTS

    agents, mcp = agents or [], mcp or []
    if not agents and not mcp:
        fail("Name the agents to serve (or 'all'), or attach an outside MCP server with --mcp.")
    if mcp_name and len(mcp) != 1:
        fail("--mcp-name names a single --mcp server.")
    names = sorted(BUILTIN_AGENTS) if agents == ["all"] else agents
    unknown = sorted(set(names) - set(BUILTIN_AGENTS))
    if unknown:
        fail(f"Unknown agent(s): {', '.join(unknown)}. Known: {', '.join(sorted(BUILTIN_AGENTS))}, or 'all'.")

    async def go() -> None:
        from contextlib import AsyncExitStack

        from agents.mcp_bridge import BridgeError, attach
        from assistant.runtime import Runtime
        from assistant.web.metrics import serve_metrics

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        embeds = any(BUILTIN_AGENTS[name].embeds_text() for name in names)
        async with Runtime(settings, agents=names, warm_embeddings=embeds) as rt, AsyncExitStack() as bridges:
            assert rt.services is not None
            served = list(names)
            workers = list(rt.workers)
            for target in mcp:
                try:
                    bridge = await bridges.enter_async_context(attach(rt.services, target, name=mcp_name))
                except (BridgeError, OSError) as err:
                    fail(f"Could not attach the MCP server {target!r}: {err}")
                workers.append(bridge)
                served.append(f"{bridge.agent.name} ({len(bridge.agent.handlers)} tools from {target})")
            grace = settings.worker_stop_grace
            console.print(
                f"Serving {', '.join(served)}; Ctrl-C or SIGTERM stops taking calls and finishes those "
                f"under way (up to {grace:g} s)."
            )
            async with serve_metrics(settings, rt.services):  # /metrics on KOMMANDANT_METRICS_PORT, if set
                await stop.wait()
                # Every agent stops taking calls at once and drains in parallel: one shared grace period.
                await asyncio.gather(*(w.stop(grace) for w in workers))
        console.print("Stopped.")

    run(go())


def start_worker_processes(agents: list[str]) -> list[Any]:
    """``kommandant up --workers``: one ``kommandant worker <agent>`` process per agent, on the same
    settings (environment and ``.env``) as this one. Returns the ``subprocess.Popen`` objects."""
    import subprocess

    return [subprocess.Popen([sys.executable, "-m", "assistant.cli", "worker", agent]) for agent in agents]


def exit_on_sigterm(signum: int, frame: Any) -> None:
    """A SIGTERM handler: leave through ``SystemExit(0)``, so ``finally`` blocks still run."""
    raise SystemExit(0)


def stop_worker_processes(processes: list[Any], grace: float) -> None:
    """SIGTERM every worker (each finishes its calls under way within ``grace`` s), then SIGKILL any
    still running a few seconds after that."""
    import subprocess
    import time

    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    give_up = time.monotonic() + grace + 5
    for process in processes:
        try:
            process.wait(timeout=max(give_up - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
