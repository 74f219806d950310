"""A bot's output: stdout and stderr read in chunks, cut into lines, secrets masked, the last lines kept
in memory and every line appended to a rotating file.

Bounded by design. Reads take at most 64 KiB at a time and a line longer than ``LINE_CAP`` characters
is cut there with a marker (the rest of it, up to the next newline, is dropped), so a bot that never
ends a line costs nothing more than one cut line. The pipe is read only as fast as lines are stored:
a bot that writes faster blocks on its full pipe, never the executor. Memory per bot is at most about
``lines`` x ``LINE_CAP`` characters of tail (8 MiB with the defaults, a few KiB for ordinary lines),
plus 2 x 128 KiB of stream buffers and ``MAX_PENDING`` bytes of lines waiting for the file.

Files are written in batches from a worker thread, so the event loop never waits on the disk. A file
grows to ``file_bytes``, then rotates: ``name.log`` -> ``name.log.1`` ... ``name.log.<backups>``.
Lines from stderr carry the prefix ``[stderr] ``. Masking works per line: a secret is replaced by
``***`` wherever it appears whole in a line (one holding a newline cannot be matched).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import BinaryIO

from agents.bots.process import READ_CHUNK

log = logging.getLogger(__name__)

LINE_CAP = 8192
"""Longest line kept, in characters; longer ones are cut with ``CUT_MARKER``."""
CUT_MARKER = " …[cut: line longer than 8192 characters]"
MASK = "***"
STDERR_PREFIX = "[stderr] "
MAX_PENDING = 1024 * 1024
"""Bytes of lines waiting for the file before reading waits for the write (backpressure)."""
FLUSH_EVERY = 0.1
"""Seconds lines wait for company before a batch is written."""


def mask(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret replaced by ``***`` (longest first, so one inside another goes too)."""
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


def _secret_list(secrets: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({s for s in secrets if s}, key=len, reverse=True))


class LineSplitter:
    """Bytes of one stream in, finished lines out: decoded as UTF-8 (bad bytes replaced), masked, cut."""

    def __init__(self, secrets: Iterable[str] = (), *, cap: int = LINE_CAP) -> None:
        self.secrets = _secret_list(secrets)
        self._cap = cap
        self._partial = b""
        self._dropping = False  # inside a line that was already cut, until its newline

    def feed(self, chunk: bytes) -> list[str]:
        """The lines that ``chunk`` finishes."""
        if self._dropping:
            newline = chunk.find(b"\n")
            if newline < 0:
                return []
            chunk, self._dropping = chunk[newline + 1 :], False
        data = self._partial + chunk
        end = data.rfind(b"\n")
        lines = [] if end < 0 else self._lines(data[:end])
        self._partial = data[end + 1 :]
        # A secret that starts before the cap must be whole in the buffer before it is masked and cut.
        longest = len(self.secrets[0].encode()) if self.secrets else 0
        if len(self._partial) > self._cap + longest:
            lines.append(self._cut(mask(self._partial.decode(errors="replace"), self.secrets)))
            self._partial, self._dropping = b"", True
        return lines

    def end(self) -> list[str]:
        """The unfinished last line, at the end of the stream."""
        rest, self._partial, self._dropping = self._partial, b"", False
        return self._lines(rest) if rest else []

    def _lines(self, data: bytes) -> list[str]:
        lines = mask(data.decode(errors="replace"), self.secrets).split("\n")
        return [self._cut(line) if len(line) > self._cap else line for line in lines]

    def _cut(self, line: str) -> str:
        return line[: self._cap] + CUT_MARKER if len(line) > self._cap else line


def rotated_files(path: Path, backups: int) -> list[Path]:
    """``path`` and its backups ``path.1`` ... ``path.<backups>``, newest first."""
    return [path, *(path.with_name(f"{path.name}.{n}") for n in range(1, backups + 1))]


class RotatingFile:
    """Appends to one file, rotating it by size. Blocking: call from a worker thread."""

    def __init__(self, path: Path, *, max_bytes: int, backups: int) -> None:
        self.path, self.max_bytes, self.backups = path, max_bytes, backups

    def append(self, data: bytes) -> None:
        """Append whole lines, rotating whenever the next ones would not fit (a single line longer than
        a whole file gets a file of its own)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            size = 0
        while data:
            room = self.max_bytes - size
            end = len(data) if len(data) <= room else data.rfind(b"\n", 0, room) + 1
            if end <= 0 and size:
                self._rotate()
                size = 0
                continue
            if end <= 0:
                end = data.find(b"\n") + 1 or len(data)
            with self.path.open("ab") as file:
                file.write(data[:end])
            size, data = size + end, data[end:]
            if data:
                self._rotate()
                size = 0

    def _rotate(self) -> None:
        if self.backups < 1:
            self.path.unlink()
            return
        files = self.files()
        for newer, older in reversed(list(itertools.pairwise(files))):
            if newer.exists():
                newer.replace(older)

    def files(self) -> list[Path]:
        """The file and its backups, newest first."""
        return rotated_files(self.path, self.backups)


def tail_files(files: Sequence[Path], lines: int) -> tuple[list[str], bool]:
    """The last ``lines`` lines over ``files`` (newest file first), oldest first, and whether older lines
    exist. Reads backwards in blocks, so a long file costs no more than its tail."""
    found: list[bytes] = []  # newest first; one more than asked tells whether older lines exist
    for path in files:
        try:
            with path.open("rb") as file:
                _read_back(file, lines + 1 - len(found), found)
        except FileNotFoundError:
            continue
        if len(found) > lines:
            break
    return [line.decode(errors="replace") for line in reversed(found[:lines])], len(found) > lines


def _read_back(file: BinaryIO, want: int, found: list[bytes]) -> None:
    """Append up to ``want`` lines from the end of ``file`` to ``found``, newest first."""
    size = position = file.seek(0, os.SEEK_END)
    rest = b""  # the end of a line whose start lies in an earlier block
    while position > 0 and want > 0:
        step = min(READ_CHUNK, position)
        position -= step
        file.seek(position)
        block = file.read(step) + rest
        if position + step == size:
            block = block.removesuffix(b"\n")  # the last newline ends the last line, it starts none
        rest, *lines = block.split(b"\n")
        for line in reversed(lines):
            found.append(line)
            want -= 1
            if want == 0:
                return
    if want > 0 and size > 0:
        found.append(rest)


class BotOutput:
    """Everything one bot writes, across its runs: the tail in memory, all of it in a rotating file."""

    def __init__(
        self, path: Path, *, lines: int = 1000, file_bytes: int = 5_000_000, backups: int = 3
    ) -> None:
        self.file = RotatingFile(path, max_bytes=file_bytes, backups=backups)
        self.secrets: tuple[str, ...] = ()
        self._tail: deque[str] = deque(maxlen=lines)
        self._count = 0
        self._pending: list[str] = []
        self._pending_bytes = 0
        self._writer: asyncio.Task[None] | None = None
        self._writing = asyncio.Lock()

    async def pump(self, stream: asyncio.StreamReader, *, stderr: bool = False) -> None:
        """Read ``stream`` until it ends, storing each line."""
        splitter = LineSplitter(self.secrets)
        prefix = STDERR_PREFIX if stderr else ""
        while chunk := await stream.read(READ_CHUNK):
            await self._store(splitter.feed(chunk), prefix)
            # read() does not yield while the pipe has data: give other tasks their turn per chunk.
            await asyncio.sleep(0)
        await self._store(splitter.end(), prefix)

    async def _store(self, lines: list[str], prefix: str) -> None:
        if not lines:
            return
        if prefix:
            lines = [prefix + line for line in lines]
        self._tail.extend(lines)
        self._count += len(lines)
        self._pending.extend(lines)
        self._pending_bytes += sum(map(len, lines)) + len(lines)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_soon(), name=f"bot-log-{self.file.path.stem}")
        if self._pending_bytes > MAX_PENDING:
            await asyncio.shield(self._writer)

    async def _write_soon(self) -> None:
        await asyncio.sleep(FLUSH_EVERY)
        await self.flush()

    async def flush(self) -> None:
        """Write the pending lines to the file now, batches in the order they came."""
        async with self._writing:
            while self._pending:
                batch, self._pending, self._pending_bytes = self._pending, [], 0
                data = ("\n".join(batch) + "\n").encode(errors="replace")
                try:
                    await asyncio.to_thread(self.file.append, data)
                except OSError:
                    log.warning("could not write the log file %s", self.file.path, exc_info=True)

    def tail(self, lines: int) -> tuple[list[str], bool]:
        """The last ``lines`` lines, oldest first, and whether older ones exist. Safe from another
        thread: the copy of the deque is one C call under the GIL."""
        kept = list(self._tail)[-lines:] if lines else []
        return kept, self._count > len(kept)

    async def close(self) -> None:
        """Write what is pending; the tail stays readable."""
        if self._writer is not None:
            await self._writer
        await self.flush()
