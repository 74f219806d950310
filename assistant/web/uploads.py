"""Files dropped into the web chat go into the knowledge base through the knowledge agent
(``assistant.uploads``: staged in Postgres, ingested by the knowledge agent's ingest tool), with progress
shown in one message that ends as the result."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import chainlit as cl

from assistant.events import Turn
from assistant.uploads import ingest_uploads as ingest_through_agent

if TYPE_CHECKING:
    from assistant.kommandant import Kommandant

log = logging.getLogger(__name__)


def uploaded_files(message: cl.Message) -> list[tuple[str, Path]]:
    """(display name, path on disk) of each file attached to ``message``."""
    files = []
    for element in message.elements or []:
        path = getattr(element, "path", None)
        if path:
            files.append((element.name or Path(path).name, Path(path)))
    return files


async def ingest_uploads(
    kommandant: Kommandant, files: list[tuple[str, Path]], turn: Turn, *, max_files: int, max_bytes: int
) -> str:
    """Ingest ``files`` as ``turn``'s person with a progress message; returns the summary shown.

    Each file succeeds or fails alone; too many files in one message are refused with a sentence before
    anything is read.
    """
    if len(files) > max_files:
        text = f"That is {len(files)} files; I ingest at most {max_files} per message. Send them in parts."
        await cl.Message(content=text).send()
        return text
    progress_message = cl.Message(content=f"Reading {len(files)} file(s) into the knowledge base…")
    await progress_message.send()

    async def progress(name: str, number: int, total: int) -> None:
        progress_message.content = f"Reading into the knowledge base: **{name}** ({number}/{total})…"
        await progress_message.update()

    outcome = await ingest_through_agent(kommandant, files, turn, max_bytes=max_bytes, progress=progress)
    progress_message.content = outcome.text()
    await progress_message.update()
    return progress_message.content
