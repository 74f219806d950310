"""Ingest files into the knowledge base: one outcome per file.

Two ways in: ``ingest_bytes`` for an upload the knowledge agent took from the staging table (the
``knowledge_tools.INGEST`` tool; the web chat's files), and ``ingest_files`` for files on this machine
(``kommandant ingest``). Each file succeeds or fails alone: a corrupt PDF gets an error outcome with one
clear sentence and the other files are stored. Every file's outcome is written to the audit trail; the
document text never is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from agents.documents import SUPPORTED_SUFFIXES, Document, DocumentError, read_document, read_document_bytes
from agents.errors import AgentError
from agents.knowledge_base import KnowledgeBase
from agents.services import Services
from embeddings import EmbeddingError
from storage.knowledge import EmbeddingMismatchError
from tools.builtin import knowledge as knowledge_tools
from tools.builtin.knowledge import IngestedFile, KnowledgeIngestResult, too_large

__all__ = [
    "MAX_FILE_BYTES",
    "SUPPORTED_SUFFIXES",
    "FileOutcome",
    "IngestReport",
    "SkippedPath",
    "folder_files",
    "ingest_bytes",
    "ingest_files",
]

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 20_000_000
"""Default size limit per file (``KOMMANDANT_INGEST_MAX_FILE_BYTES`` overrides it)."""

FileOutcome = IngestedFile
"""What became of one file (the ingest tool's per-file output)."""
IngestReport = KnowledgeIngestResult
"""The outcomes of several files, with the summary a chat reply shows."""

Progress = Callable[[str, int, int], Awaitable[None]]


def _check(name: str, size: int, limit: int) -> None:
    suffix = Path(name).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DocumentError(
            f"{name}: unsupported file type {suffix or '(none)'} (use txt, md, pdf, docx or html)"
        )
    if size > limit:
        raise DocumentError(too_large(name, size, limit))
    if size == 0:
        raise DocumentError(f"{name}: the file is empty")


async def _one(
    services: Services,
    knowledge: KnowledgeBase,
    name: str,
    size: Callable[[], int],
    read: Callable[[], Document],
    *,
    user: str,
) -> IngestedFile:
    """Check, parse (in a thread), embed and store one file; any failure is this file's outcome."""
    limit = getattr(services.settings, "ingest_max_file_bytes", MAX_FILE_BYTES)
    try:
        _check(name, size(), limit)
        document = await asyncio.to_thread(read)
        entry, duplicate = await knowledge.add(document, source=name, user=user)
    except (DocumentError, EmbeddingError, EmbeddingMismatchError) as err:
        outcome = IngestedFile(name=name, error=str(err))
    except AgentError as err:
        outcome = IngestedFile(name=name, error=f"{name}: {err}")
    except Exception:  # a parser bug on one odd file must not lose the others
        log.exception("ingesting %s failed", name)
        outcome = IngestedFile(name=name, error=f"{name}: could not be read")
    else:
        outcome = IngestedFile(name=name, chunks=0 if duplicate else entry.chunks, duplicate=duplicate)
    await services.audit.append(
        knowledge_tools.INGEST.name,  # the kind: one row per file the tool (or the CLI) read
        actor=user,
        tool=knowledge_tools.INGEST.name,
        data={"file": name, "chunks": outcome.chunks, "duplicate": outcome.duplicate, "error": outcome.error},
    )
    return outcome


async def ingest_bytes(
    services: Services, name: str, content: bytes, *, user: str, knowledge: KnowledgeBase | None = None
) -> IngestedFile:
    """Add one file's ``content`` (an upload named ``name``) to the knowledge base."""
    return await _one(
        services,
        knowledge or KnowledgeBase(services),
        name,
        partial(len, content),
        partial(read_document_bytes, content, name),
        user=user,
    )


def _file_size(path: Path, name: str) -> int:
    try:
        return path.stat().st_size
    except OSError as err:
        raise DocumentError(f"{name}: cannot be read ({err.strerror or err})") from err


@dataclass(frozen=True)
class SkippedPath:
    """Something inside a folder that was not read, and why (a sentence fragment after its name)."""

    name: str
    reason: str
    leads_out: bool = False
    """A symbolic link out of the folder (``follow_symlinks`` would read it)."""


def folder_files(
    folder: Path, *, follow_symlinks: bool = False
) -> tuple[list[tuple[str, Path]], list[SkippedPath]]:
    """The supported files inside ``folder`` (recursively, in a stable order) as (display name, path), and
    what was left out on purpose.

    A symbolic link that resolves outside ``folder`` (to a file or to a folder) is not followed unless
    ``follow_symlinks``: a link to /etc/passwd dropped into a shared folder must not end up in the shared
    knowledge base. Links to files inside it are read; a folder reached twice (a link loop) is walked once.
    """
    root = folder.resolve()
    found: list[tuple[str, Path]] = []
    skipped: list[SkippedPath] = []
    walked = {root}

    def walk(directory: Path) -> None:
        try:
            entries = sorted(directory.iterdir())
        except OSError as err:
            skipped.append(
                SkippedPath(str(directory.relative_to(folder.parent)), f"cannot be read ({err.strerror})")
            )
            return
        for entry in entries:
            name = str(entry.relative_to(folder.parent))
            if entry.is_symlink():
                target = entry.resolve()
                if target.is_relative_to(root):
                    if target.is_dir():
                        continue  # walked under its own name
                elif not follow_symlinks:
                    if target.is_dir() or entry.suffix.lower() in SUPPORTED_SUFFIXES:
                        skipped.append(
                            SkippedPath(name, f"a link to {target}, outside {folder}", leads_out=True)
                        )
                    continue
            if entry.is_dir():
                real = entry.resolve()
                if real not in walked:
                    walked.add(real)
                    walk(entry)
            elif entry.is_file() and entry.suffix.lower() in SUPPORTED_SUFFIXES:
                found.append((name, entry))

    walk(folder)
    return found, skipped


async def ingest_files(
    services: Services,
    files: Sequence[tuple[str, Path]],
    *,
    user: str,
    progress: Progress | None = None,
    knowledge: KnowledgeBase | None = None,
) -> KnowledgeIngestResult:
    """Add ``files`` ((display name, path) pairs) on this machine to the knowledge base, one by one.

    ``progress(name, done, total)`` is awaited after each file.
    """
    knowledge = knowledge or KnowledgeBase(services)
    outcomes: list[IngestedFile] = []
    for done, (name, path) in enumerate(files, start=1):
        file = Path(path)
        outcomes.append(
            await _one(
                services,
                knowledge,
                name,
                partial(_file_size, file, name),
                partial(read_document, file, name),
                user=user,
            )
        )
        if progress is not None:
            await progress(name, done, len(files))
    return KnowledgeIngestResult(files=outcomes)
