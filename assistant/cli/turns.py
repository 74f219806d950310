"""CLI front doors: ``ask`` (one turn), ``parse`` (only the match), ``chat`` (a terminal chat), ``worker``."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from assistant.cli.console import console, err_console, fail, load_settings, run
from assistant.events import (
    ApprovalRequired,
    ApprovalResolved,
    Event,
    Failed,
    IntentRecognized,
    ReplyDone,
    ToolFinished,
    ToolStarted,
    Turn,
)
from settings import Settings


def parse(
    text: Annotated[
        str, typer.Argument(help="The utterance, or '-' to read one utterance per line from stdin.")
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (one line per utterance with '-').")
    ] = False,
) -> None:
    """Print what an utterance means: [{"tool", "arguments", "confidence", "source"}], [] for no match."""
    settings = Settings()
    from intents import Recognizer
    from tools import builtin_catalog

    recognizer = Recognizer(builtin_catalog(), timezone=settings.timezone)
    lines = (line.rstrip("\n") for line in sys.stdin) if text == "-" else iter([text])
    for line in lines:
        matches = [m.to_json() for m in recognizer.recognize(line)]
        if as_json or text == "-":
            sys.stdout.write(json.dumps(matches, ensure_ascii=False) + "\n")
            sys.stdout.flush()
        elif not matches:
            console.print("[yellow]No command recognised.[/] Try: " + "; ".join(recognizer.suggest(line)))
        else:
            for m in matches:
                console.print(
                    f"[bold]{m['tool']}[/] {escape(json.dumps(m['arguments'], ensure_ascii=False))} "
                    f"(confidence {m['confidence']:.2f}, {m['source']})"
                )


def _print_event(event: Event) -> None:
    if isinstance(event, IntentRecognized):
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


async def _confirm(kommandant: Any, event: ApprovalRequired, turn: Turn) -> None:
    """In a terminal, the person at the keyboard decides; elsewhere the turn waits for another channel."""
    if not sys.stdin.isatty():
        err_console.print(f"Waiting for approval {event.approval_id} from the web chat or another channel…")
        return
    answer = await asyncio.to_thread(input, f"Run {event.tool} {json.dumps(event.arguments)}? [y/N] ")
    await kommandant.decide(
        event.approval_id,
        approve=answer.strip().lower() in {"y", "yes"},
        user=turn.user,
        role=turn.role,
        channel=turn.channel,
        thread=turn.thread,
    )


async def run_turn(kommandant: Any, turn: Turn, *, show: bool) -> dict[str, Any]:
    """Run one turn; print events as they come when ``show``; return its JSON summary."""
    summary: dict[str, Any] = {"text": turn.text, "intents": [], "tools": [], "approvals": [], "reply": ""}
    async for event in kommandant.handle(turn):
        if show:
            _print_event(event)
        if isinstance(event, IntentRecognized):
            summary["intents"].append(event.to_json())
        elif isinstance(event, ToolFinished):
            summary["tools"].append(event.to_json())
        elif isinstance(event, ApprovalResolved):
            summary["approvals"].append(event.to_json())
        elif isinstance(event, ReplyDone):
            summary["reply"] = event.text
        if isinstance(event, ApprovalRequired):
            await _confirm(kommandant, event, turn)
    return summary


def ask(
    text: Annotated[
        str | None, typer.Argument(help='What to ask, e.g. "remind me to stretch in an hour".')
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print intents, tools, results and reply as JSON.")
    ] = False,
    user: Annotated[str, typer.Option(help="Who is asking.")] = "local",
    audio: Annotated[
        Path | None, typer.Option("--audio", help="Say it instead: a recording (WAV, FLAC, OGG, MP3).")
    ] = None,
) -> None:
    """Run one turn and print the reply."""
    settings = load_settings()
    if (text is None) == (audio is None):
        fail("Give the command as text or as --audio FILE (one of the two).")

    async def go() -> dict[str, Any]:
        from assistant.runtime import Runtime

        async with Runtime(settings) as rt:
            assert rt.kommandant is not None
            if audio is not None:
                return await _run_voice_turn(rt.kommandant, settings, audio, user, show=not as_json)
            turn = Turn(text=text or "", user=user, channel="cli")
            return await run_turn(rt.kommandant, turn, show=not as_json)

    result = run(go())
    if as_json:
        sys.stdout.write(json.dumps(result, ensure_ascii=False, default=str) + "\n")


async def _run_voice_turn(
    kommandant: Any, settings: Settings, audio: Path, user: str, *, show: bool
) -> dict[str, Any]:
    """``ask --audio``: transcribe the recording, then the normal turn; the summary adds the transcript."""
    from assistant.speech import Heard, VoiceTurns
    from voice import VoiceError, normalize_transcript

    voice = VoiceTurns(settings, kommandant)
    try:
        transcript = await voice.transcribe(await voice.decode(audio), user=user)
    except VoiceError as err:
        fail(str(err))
    text = normalize_transcript(transcript.text)
    if show:
        err_console.print(f"[dim]heard: {escape(text or '…')}[/]")

    class Spoken:
        """The Kommandant as ``run_turn`` sees it, with the turn coming from the transcript."""

        decide = kommandant.decide

        @staticmethod
        async def handle(turn: Turn) -> Any:
            async for event in voice.handle(transcript, user=turn.user, channel=turn.channel):
                if not isinstance(event, Heard):
                    yield event

    summary = await run_turn(Spoken(), Turn(text=text, user=user, channel="voice"), show=show)
    summary["transcript"] = transcript.to_json()
    return summary


def chat(user: Annotated[str, typer.Option(help="Who is chatting.")] = "local") -> None:
    """A terminal chat. Reminders appear as they fall due. Ctrl-D or 'exit' ends it."""
    settings = load_settings()

    async def go() -> None:
        from agents import fired_topic
        from assistant.runtime import Runtime

        async with Runtime(settings, warm_embeddings=True) as rt:
            assert rt.kommandant is not None and rt.services is not None
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
                        await run_turn(rt.kommandant, Turn(text=line, user=user, channel="cli"), show=True)
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

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        embeds = bool({"memory", "knowledge"} & set(names))  # only these agents' tools embed text
        async with Runtime(settings, agents=names, warm_embeddings=embeds) as rt, AsyncExitStack() as bridges:
            assert rt.services is not None
            served = list(names)
            for target in mcp:
                try:
                    bridge = await bridges.enter_async_context(attach(rt.services, target, name=mcp_name))
                except (BridgeError, OSError) as err:
                    fail(f"Could not attach the MCP server {target!r}: {err}")
                served.append(f"{bridge.agent.name} ({len(bridge.agent.handlers)} tools from {target})")
            console.print(f"Serving {', '.join(served)}; Ctrl-C stops after the calls under way.")
            await stop.wait()
        console.print("Stopped.")

    run(go())
