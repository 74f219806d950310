"""``kommandant notion sync``: import the configured Notion data sources and pages into the knowledge base.

The sync is the notion agent's tool, called through the Kommandant like any front door's call (policy,
audit, the bus), so it runs where the agent runs: in this process in embedded mode, on a worker in
distributed mode. Progress arrives as bus events (``notion.sync.progress``) and is printed as it comes.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any

import typer
from rich.markup import escape

from assistant.cli.console import RoleOption, console, fail, load_settings, role_of, run

app = typer.Typer(
    help="Notion: import pages into the knowledge base (see docs/notion.md).", no_args_is_help=True
)

PROGRESS = "notion.sync.progress"
FINISHED = "notion.sync.finished"


@app.command()
def sync(
    full: Annotated[
        bool, typer.Option("--full", help="Also compare every page id now: trashed pages leave at once.")
    ] = False,
    user: Annotated[str, typer.Option("--user", help="Who is asking (for the audit trail).")] = "local",
    role: RoleOption = "admin",
    timeout: Annotated[
        float, typer.Option(min=1, help="Seconds to wait for the sync (a first import can be long).")
    ] = 3600.0,
) -> None:
    """Import what changed in Notion since the last sync, printing each page as it is handled."""
    who = role_of(role)
    base = load_settings()
    if base.notion_token is None:
        fail("Notion is not set up: set KOMMANDANT_NOTION_TOKEN (see docs/notion.md).")
    settings = base.model_copy(update={"call_timeout": max(base.call_timeout, timeout)})

    async def go() -> tuple[str, bool, dict[str, Any] | None]:
        from assistant.events import ReplyDelta, ToolFinished, Turn
        from assistant.runtime import Runtime
        from tools.builtin import notion as notion_tools

        async with Runtime(settings) as rt:
            assert rt.kommandant is not None and rt.services is not None
            definition = rt.services.catalog.get(notion_tools.SYNC.name)
            turn = Turn(text="kommandant notion sync", user=user, channel="cli", role=who)
            finished: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            async with rt.services.bus.subscribe("notion.sync.*") as events:
                printer = asyncio.create_task(_print_progress(events, finished))
                texts, ok, structured = [], True, None
                try:
                    async for event in rt.kommandant.run_tool(definition, {"full": full}, turn):
                        if isinstance(event, ToolFinished):
                            ok, structured = event.ok, event.structured
                        elif isinstance(event, ReplyDelta):
                            texts.append(event.text)
                    if ok and structured is not None and not structured.get("finished", True):
                        # The agent answered before the sync ended (its own call timeout): wait for it.
                        console.print("The sync goes on in the background; waiting for it to end…")
                        payload = await asyncio.wait_for(finished, timeout)
                        texts = [
                            payload.get("error")
                            or notion_tools.NotionSyncResult.model_validate(payload["result"]).summary()
                        ]
                        structured = payload["result"]
                finally:
                    printer.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await printer
            return " ".join(texts), ok and structured is not None, structured

    text, ok, structured = run(go())
    if not ok:
        fail(text or "The notion agent did not answer.", code=1)
    for source in (structured or {}).get("sources", []):
        kind = source["kind"].replace("_", " ")
        console.print(
            f"{kind} {source['source']}: {source['imported']} imported, {source['unchanged']} unchanged, "
            f"{source['removed']} removed, {source['pages']} in the knowledge base",
            highlight=False,
        )
        for error in source["errors"]:
            console.print(f"  [red]✗[/] {error}", highlight=False)
    console.print(text, highlight=False, soft_wrap=True)
    if any(source["errors"] for source in (structured or {}).get("sources", [])):
        raise typer.Exit(1)


async def _print_progress(events: Any, finished: asyncio.Future[dict[str, Any]]) -> None:
    """Print each page as the agent reports it; hand the end-of-sync event to whoever waits for it."""
    async for event in events:
        if event.topic == PROGRESS:
            payload = event.payload
            source, title = str(payload.get("source", ""))[:8], escape(str(payload.get("title", "")))
            console.print(f"  [dim]{source}…[/] {payload.get('done')}: {title}", highlight=False)
        elif event.topic == FINISHED and not finished.done():
            finished.set_result(event.payload)


def register(main: typer.Typer) -> None:
    """Add ``notion`` to the command line."""
    main.add_typer(app, name="notion")
