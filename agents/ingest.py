"""Ingest files into the knowledge base (chat uploads, ``kommandant ingest``): one outcome per file.

Each file succeeds or fails alone: a corrupt PDF gets an error outcome with one clear sentence and the
other files are stored. Every file's outcome is written to the audit trail.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from agents.documents import SUPPORTED_SUFFIXES, DocumentError, read_document
from agents.errors import AgentError
from agents.knowledge import KnowledgeBase
from agents.services import Services
from embeddings import EmbeddingError
from storage.knowledge import EmbeddingMismatchError

__all__ = ["MAX_FILE_BYTES", "SUPPORTED_SUFFIXES", "FileOutcome", "IngestReport", "ingest_files"]

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 20_000_000
"""Default size limit per file (``KOMMANDANT_INGEST_MAX_FILE_BYTES`` overrides it)."""

Progress = Callable[[str, int, int], Awaitable[None]]


@dataclass(frozen=True)
class FileOutcome:
    name: str
    """Display name (the upload's file name)."""
    chunks: int
    """Chunks stored (0 on error or duplicate)."""
    duplicate: bool
    """The same content was already in the knowledge base."""
    error: str | None
    """One clear sentence when the file was not stored."""


@dataclass(frozen=True)
class IngestReport:
    files: list[FileOutcome]

    @property
    def stored(self) -> list[FileOutcome]:
        return [f for f in self.files if f.error is None and not f.duplicate]

    def summary(self) -> str:
        """One or two sentences for a chat reply."""
        stored, parts = self.stored, []
        if stored:
            chunks = sum(f.chunks for f in stored)
            names = ", ".join(f.name for f in stored)
            parts.append(
                f"Added {len(stored)} file{'s' if len(stored) > 1 else ''} ({names}) to the knowledge base "
                f"as {chunks} passage{'s' if chunks != 1 else ''}."
            )
        duplicates = [f.name for f in self.files if f.duplicate]
        if duplicates:
            parts.append(f"Already there: {', '.join(duplicates)}.")
        errors = [f.error for f in self.files if f.error]
        if errors:
            parts.append("Not added: " + "; ".join(e.rstrip(".") for e in errors if e) + ".")
        return " ".join(parts) or "There were no files to add."


def _size(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 1_000_000 else f"{count / 1e3:.0f} kB"


def _check(path: Path, name: str, limit: int) -> None:
    suffix = Path(name).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DocumentError(
            f"{name}: unsupported file type {suffix or '(none)'} (use txt, md, pdf, docx or html)"
        )
    try:
        size = path.stat().st_size
    except OSError as err:
        raise DocumentError(f"{name}: cannot be read ({err.strerror or err})") from err
    if size > limit:
        raise DocumentError(f"{name}: {_size(size)} is over the {_size(limit)} limit per file")
    if size == 0:
        raise DocumentError(f"{name}: the file is empty")


async def _one(knowledge: KnowledgeBase, path: Path, name: str, *, user: str, limit: int) -> FileOutcome:
    try:
        _check(path, name, limit)
        document = await asyncio.to_thread(read_document, path, name)
        entry, duplicate = await knowledge.add(document, source=name, user=user)
    except (DocumentError, EmbeddingError, EmbeddingMismatchError) as err:
        return FileOutcome(name=name, chunks=0, duplicate=False, error=str(err))
    except AgentError as err:
        return FileOutcome(name=name, chunks=0, duplicate=False, error=f"{name}: {err}")
    except Exception:  # a parser bug on one odd file must not lose the others
        log.exception("ingesting %s failed", name)
        return FileOutcome(name=name, chunks=0, duplicate=False, error=f"{name}: could not be read")
    return FileOutcome(name=name, chunks=0 if duplicate else entry.chunks, duplicate=duplicate, error=None)


async def ingest_files(
    services: Services,
    files: Sequence[tuple[str, Path]],
    *,
    user: str,
    progress: Progress | None = None,
    knowledge: KnowledgeBase | None = None,
) -> IngestReport:
    """Add ``files`` ((display name, path) pairs) to the knowledge base, one by one.

    ``progress(name, done, total)`` is awaited after each file. Audit rows record every outcome (name,
    chunks, duplicate, error); the document text itself never enters the audit trail.
    """
    knowledge = knowledge or KnowledgeBase(services)
    limit = getattr(services.settings, "ingest_max_file_bytes", MAX_FILE_BYTES)
    outcomes: list[FileOutcome] = []
    for done, (name, path) in enumerate(files, start=1):
        outcome = await _one(knowledge, Path(path), name, user=user, limit=limit)
        outcomes.append(outcome)
        await services.audit.append(
            "knowledge_ingest",
            actor=user,
            tool="knowledge_add",
            data={
                "file": name,
                "chunks": outcome.chunks,
                "duplicate": outcome.duplicate,
                "error": outcome.error,
            },
        )
        if progress is not None:
            await progress(name, done, len(files))
    return IngestReport(files=outcomes)
