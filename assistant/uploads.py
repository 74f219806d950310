"""Files a person hands to a front door go into the knowledge base through the knowledge agent's ingest tool
(``tools.builtin.knowledge.INGEST``).

The front door never parses or embeds a document: it stages each file's bytes in Postgres
(``storage.uploads``; a bus message is too small for a 20 MB file, and every process shares the
database) and asks the knowledge agent, wherever it runs, to ingest it by id, one call per file, through
``Kommandant.run_tool``: the same policy (a viewer may not add documents), audit and bus as a typed
command. One call per file keeps each call within the tool call deadline and gives progress per file.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.events import Turn
from assistant.reads import ToolReadError, call_tool
from storage.uploads import StagedUploadRepository
from tools.builtin import knowledge as knowledge_tools
from tools.builtin.knowledge import IngestedFile, KnowledgeIngestResult, too_large

if TYPE_CHECKING:
    from assistant.kommandant import Kommandant

__all__ = ["IngestOutcome", "ingest_uploads"]

Progress = Callable[[str, int, int], Awaitable[None]]
"""``progress(name, number, total)``: awaited before each file is read."""


@dataclass(frozen=True)
class IngestOutcome:
    """What became of the files: one outcome per file read, and why the rest were not, if they were not."""

    result: KnowledgeIngestResult
    stopped: str | None = None
    """The sentence that stopped the rest (the tool refused, or its agent could not be reached)."""
    not_read: tuple[str, ...] = ()
    """Names of the files that were not read because of ``stopped``."""

    def text(self) -> str:
        """The reply for the chat: the summary, then each file's problem on a line of its own."""
        lines = [self.result.summary()] if self.result.files or not self.stopped else []
        if self.stopped:
            lines.append(f"Not added: {', '.join(self.not_read)}. {self.stopped}")
        lines += [f"- {outcome.error}" for outcome in self.result.files if outcome.error]
        return "\n".join(lines)


async def ingest_uploads(
    kommandant: Kommandant,
    files: Sequence[tuple[str, Path]],
    turn: Turn,
    *,
    max_bytes: int,
    progress: Progress | None = None,
) -> IngestOutcome:
    """Stage and ingest ``files`` ((display name, path) pairs) as ``turn``'s person, one by one.

    A file over ``max_bytes`` is refused before it is staged. A file the agent cannot read is an outcome
    with its sentence and the others go on; a call that does not run at all (refused by the policy, the
    agent unreachable) stops the rest, which would fail the same way.
    """
    staging = StagedUploadRepository(kommandant.services.database.sessionmaker)
    outcomes: list[IngestedFile] = []
    for number, (name, path) in enumerate(files, start=1):
        if progress is not None:
            await progress(name, number, len(files))
        try:
            content = await asyncio.to_thread(_read, path, max_bytes)
        except OSError as err:
            outcomes.append(IngestedFile(name=name, error=f"{name}: cannot be read ({err.strerror or err})"))
            continue
        if isinstance(content, int):
            outcomes.append(IngestedFile(name=name, error=too_large(name, content, max_bytes)))
            continue
        upload = await staging.stage(owner=turn.user, name=name, content=content)
        try:
            result = await call_tool(kommandant, knowledge_tools.INGEST, {"id": str(upload)}, turn)
        except ToolReadError as err:
            await staging.delete(upload)  # the agent never took it (or gave up on it)
            rest = tuple(n for n, _ in files[number - 1 :])
            return IngestOutcome(KnowledgeIngestResult(files=outcomes), stopped=str(err), not_read=rest)
        outcomes += KnowledgeIngestResult.model_validate(result).files
    return IngestOutcome(KnowledgeIngestResult(files=outcomes))


def _read(path: Path, max_bytes: int) -> bytes | int:
    """The file's bytes, or its size when that is over ``max_bytes`` (it is then not read at all)."""
    size = path.stat().st_size
    return size if size > max_bytes else path.read_bytes()
