"""Files dropped into the web chat go into the knowledge base (``agents.ingest``), with progress shown."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import chainlit as cl

log = logging.getLogger(__name__)

NOT_AVAILABLE = (
    "Knowledge ingestion is not available in this version yet, so {names} {verb} not stored. "
    "Your message text is answered as usual."
)


def uploaded_files(message: cl.Message) -> list[tuple[str, Path]]:
    """(display name, path on disk) of each file attached to ``message``."""
    files = []
    for element in message.elements or []:
        path = getattr(element, "path", None)
        if path:
            files.append((element.name or Path(path).name, Path(path)))
    return files


async def ingest_uploads(runtime: Any, files: list[tuple[str, Path]], *, user: str, max_files: int) -> str:
    """Ingest ``files`` for ``user`` with a progress message; returns the summary shown to the person.

    Each file succeeds or fails alone (the ingestion reports per file); too many files in one message
    are refused with a sentence before anything is read.
    """
    if len(files) > max_files:
        text = f"That is {len(files)} files; I ingest at most {max_files} per message. Send them in parts."
        await cl.Message(content=text).send()
        return text
    try:
        from agents.ingest import ingest_files  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        names = ", ".join(name for name, _ in files)
        text = NOT_AVAILABLE.format(names=names, verb="was" if len(files) == 1 else "were")
        await cl.Message(content=text).send()
        return text
    progress_message = cl.Message(content=f"Reading {len(files)} file(s) into the knowledge base…")
    await progress_message.send()

    async def progress(name: str, done: int, total: int) -> None:
        progress_message.content = f"Reading into the knowledge base: **{name}** ({done}/{total})…"
        await progress_message.update()

    report = await ingest_files(runtime.services, files, user=user, progress=progress)
    lines = [report.summary()]
    lines += [f"- {outcome.error}" for outcome in report.files if outcome.error]
    text = "\n".join(lines)
    progress_message.content = text
    await progress_message.update()
    return text
