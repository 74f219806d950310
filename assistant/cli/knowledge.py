"""CLI: the knowledge commands: `ingest`, `reembed` (issue 7).

`ingest` reads the files in this process (``agents.ingest.ingest_files``), as an operator's bulk load
beside the database: folders of any size, one progress bar, no tool call deadline per file and no copy
of each file through the staging table. Files people hand to a front door go through the knowledge
agent's ingest tool instead (``assistant.uploads``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from assistant.cli.console import console, fail, load_settings, run


def _expand(paths: list[Path], follow_symlinks: bool) -> list[tuple[str, Path]]:
    """Files as given, and the supported files inside folders (recursively), in a stable order; says
    which links out of a folder were skipped."""
    from agents.ingest import folder_files

    found: list[tuple[str, Path]] = []
    for path in paths:
        if path.is_dir():
            files, skipped = folder_files(path, follow_symlinks=follow_symlinks)
            found += files
            for item in skipped:
                console.print(f"[yellow]-[/] {item.name}: skipped, {item.reason}", highlight=False)
            if any(item.leads_out for item in skipped):
                console.print("  (--follow-symlinks reads links out of the folder too)", highlight=False)
        elif path.exists():
            found.append((path.name, path))
        else:
            fail(f"{path} does not exist.")
    return found


def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (txt, md, pdf, docx, html).")],
    user: Annotated[str, typer.Option(help="Who is adding them (for the audit trail).")] = "local",
    follow_symlinks: Annotated[
        bool,
        typer.Option(
            "--follow-symlinks",
            help="Also read links in the folders that point outside them (skipped by default).",
        ),
    ] = False,
) -> None:
    """Add documents to the knowledge base, with a progress bar. A bad file fails alone.

    Symbolic links inside a folder that lead out of it are skipped (and listed) unless --follow-symlinks.
    """
    settings = load_settings()
    files = _expand(paths, follow_symlinks)
    if not files:
        fail("No supported files found (txt, md, pdf, docx, html).")

    async def go() -> list[tuple[str, int, bool, str | None]]:
        from rich.progress import Progress

        from agents.ingest import ingest_files
        from assistant.runtime import Runtime

        async with Runtime(settings, agents=()) as rt:
            assert rt.services is not None
            with Progress(console=console, transient=True) as bar:
                task = bar.add_task("Ingesting", total=len(files))

                async def progress(name: str, done: int, total: int) -> None:
                    bar.update(task, completed=done, description=f"Ingesting {name}")

                report = await ingest_files(rt.services, files, user=user, progress=progress)
        return [(f.name, f.chunks, f.duplicate, f.error) for f in report.files]

    outcomes = run(go())
    for name, chunks, duplicate, error in outcomes:
        if error:
            console.print(f"[red]✗[/] {error}", highlight=False)
        elif duplicate:
            console.print(f"[yellow]=[/] {name}: already in the knowledge base", highlight=False)
        else:
            console.print(
                f"[green]✓[/] {name}: {chunks} passage{'s' if chunks != 1 else ''}", highlight=False
            )
    if any(error for *_, error in outcomes):
        raise typer.Exit(1)


def reembed(
    batch: Annotated[int, typer.Option(min=1, max=4096, help="Texts per embedding batch.")] = 256,
) -> None:
    """Embed the knowledge base and memories again with the configured model (after changing it)."""
    settings = load_settings()

    async def go() -> dict[str, int]:
        from rich.progress import Progress

        from agents.knowledge import reembed as reembed_all
        from embeddings import embedder_from_settings
        from storage import Database
        from storage.knowledge import KnowledgeRepository

        embedder = embedder_from_settings(settings)
        async with Database.from_settings(settings) as db:
            with Progress(console=console, transient=True) as bar:
                task = bar.add_task(f"Re-embedding with {embedder.model}", total=None)

                async def progress(table: str, done: int) -> None:
                    bar.update(task, completed=done, description=f"Re-embedding {table}: {done}")

                return await reembed_all(
                    KnowledgeRepository(db.sessionmaker), embedder, batch=batch, progress=progress
                )

    counts = run(go())
    console.print(
        f"Re-embedded {counts.get('chunks', 0)} passages and {counts.get('memories', 0)} memories "
        f"with {settings.embedding_model}."
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the ``kommandant`` app."""
    app.command()(ingest)
    app.command()(reembed)
