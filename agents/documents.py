"""Documents -> structured blocks -> overlapping chunks. Pure parsing; blocking, so callers use a thread.

Each reader keeps the structure a citation needs: the page (PDF) and the section heading (Markdown, HTML,
Word). Chunks never straddle two sections or pages, so a passage's metadata is always true of all of it.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from agents.errors import AgentError

__all__ = [
    "CHUNK_CHARS",
    "OVERLAP_CHARS",
    "SUPPORTED_SUFFIXES",
    "Block",
    "Chunk",
    "Document",
    "DocumentError",
    "chunk_document",
    "read_document",
    "read_document_bytes",
    "text_document",
]

SUPPORTED_SUFFIXES: frozenset[str] = frozenset({".txt", ".md", ".pdf", ".docx", ".html", ".htm"})
CHUNK_CHARS = 1000
"""Longest chunk: about 200 words, well inside all-MiniLM-L6-v2's 256-token window."""
OVERLAP_CHARS = 150
"""Text repeated from the end of one chunk at the start of the next, so no sentence loses its context."""

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


class DocumentError(AgentError):
    """A document that cannot be read: unsupported, corrupt, encrypted or without text."""


@dataclass(frozen=True, slots=True)
class Block:
    """A paragraph-like piece of a document and where it sits."""

    text: str
    page: int | None = None
    section: str | None = None


@dataclass(frozen=True, slots=True)
class Document:
    title: str
    mime_type: str
    blocks: list[Block]


@dataclass(frozen=True, slots=True)
class Chunk:
    """A passage to embed and store, with its page and section."""

    text: str
    page: int | None = None
    section: str | None = None

    def metadata(self) -> dict[str, object]:
        return {k: v for k, v in (("page", self.page), ("section", self.section)) if v is not None}


def _paragraphs(text: str) -> list[str]:
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]


def _decode(raw: bytes, name: str) -> str:
    if b"\x00" in raw[:8192]:
        raise DocumentError(f"{name}: this looks like a binary file, not text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def text_document(text: str, title: str) -> Document:
    """Plain text (a note): paragraphs split at blank lines."""
    return Document(title=title, mime_type="text/plain", blocks=[Block(p) for p in _paragraphs(text)])


def _markdown(raw: bytes, name: str) -> Document:
    section: str | None = None
    title: str | None = None
    blocks: list[Block] = []
    lines: list[str] = []
    in_fence = False

    def flush() -> None:
        blocks.extend(Block(p, section=section) for p in _paragraphs("\n".join(lines)))
        lines.clear()

    for line in _decode(raw, name).splitlines():
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        heading = None if in_fence else _MD_HEADING.match(line)
        if heading:
            flush()
            section = heading.group(2).strip()
            title = title or section
        else:
            lines.append(line)
    flush()
    return Document(title=title or Path(name).stem, mime_type="text/markdown", blocks=blocks)


_HTML_BLOCKS = ("h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "pre", "blockquote", "td", "th", "dd", "dt")


def _html(raw: bytes, name: str) -> Document:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(raw, "html.parser")
    for noise in soup(["script", "style", "nav", "noscript", "template"]):
        noise.decompose()
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    section: str | None = None
    blocks: list[Block] = []
    for element in soup.find_all(_HTML_BLOCKS):
        if element.find_parent(_HTML_BLOCKS) is not None:
            continue  # its text is part of the enclosing block
        words = " ".join(element.get_text(" ", strip=True).split())
        if not words:
            continue
        if element.name and element.name[0] == "h" and element.name[1:].isdigit():
            section = words
            title = title or words
        else:
            blocks.append(Block(words, section=section))
    if not blocks:  # no block elements at all: the page's text, paragraph by paragraph
        blocks = [Block(p) for p in _paragraphs(soup.get_text("\n\n"))]
    return Document(title=title or Path(name).stem, mime_type="text/html", blocks=blocks)


def _pdf(path: Path | BinaryIO, name: str) -> Document:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            raise DocumentError(f"{name}: the PDF is encrypted; remove the password and try again")
        blocks: list[Block] = []
        for number, page in enumerate(reader.pages, start=1):
            text = page.extract_text() or ""
            blocks.extend(Block(p, page=number) for p in _paragraphs(text))
        meta_title = reader.metadata.title if reader.metadata else None
    except DocumentError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as err:
        raise DocumentError(f"{name}: the PDF is damaged or not a PDF ({err})") from err
    return Document(title=str(meta_title or Path(name).stem), mime_type="application/pdf", blocks=blocks)


def _docx(path: Path | BinaryIO, name: str) -> Document:
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(str(path) if isinstance(path, Path) else path)
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError, OSError) as err:
        raise DocumentError(f"{name}: the Word file is damaged or not a .docx ({err})") from err
    section: str | None = None
    blocks: list[Block] = []
    for paragraph in document.paragraphs:
        words = " ".join(paragraph.text.split())
        if not words:
            continue
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        if style.startswith("Heading") or style == "Title":
            section = words
        else:
            blocks.append(Block(words, section=section))
    for table in document.tables:
        for row in table.rows:
            cells = " | ".join(" ".join(c.text.split()) for c in row.cells if c.text.strip())
            if cells:
                blocks.append(Block(cells, section=section))
    title = document.core_properties.title or Path(name).stem
    mime = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    return Document(title=title, mime_type=mime, blocks=blocks)


def _text(raw: bytes, name: str) -> Document:
    return text_document(_decode(raw, name), Path(name).stem)


_BYTE_READERS: dict[str, Callable[[bytes, str], Document]] = {
    ".txt": _text,
    ".md": _markdown,
    ".html": _html,
    ".htm": _html,
}
_FILE_READERS: dict[str, Callable[[Path | BinaryIO, str], Document]] = {".pdf": _pdf, ".docx": _docx}


def read_document(path: Path, name: str | None = None) -> Document:
    """Parse a file by its suffix (of ``name``, the upload's name, when given). Raises ``DocumentError``."""
    name = name or path.name
    suffix = Path(name).suffix.lower()
    if suffix in _FILE_READERS:
        return _checked(_FILE_READERS[suffix](path, name), name)
    _supported(suffix, name)
    return _checked(_BYTE_READERS[suffix](path.read_bytes(), name), name)


def read_document_bytes(raw: bytes, name: str) -> Document:
    """Parse a file's content (an upload) by the suffix of ``name``. Raises ``DocumentError``."""
    suffix = Path(name).suffix.lower()
    if suffix in _FILE_READERS:
        return _checked(_FILE_READERS[suffix](io.BytesIO(raw), name), name)
    _supported(suffix, name)
    return _checked(_BYTE_READERS[suffix](raw, name), name)


def _supported(suffix: str, name: str) -> None:
    if suffix not in _BYTE_READERS:
        kinds = "txt, md, pdf, docx or html"
        raise DocumentError(f"{name}: unsupported file type {suffix or '(none)'} (use {kinds})")


def _checked(document: Document, name: str) -> Document:
    if not any(block.text.strip() for block in document.blocks):
        raise DocumentError(f"{name}: no text found in it (a scanned PDF needs OCR first)")
    return document


def _sentences(text: str, limit: int) -> Iterable[str]:
    """Sentences of ``text``; a sentence longer than ``limit`` is cut at word boundaries."""
    for sentence in _SENTENCE_END.split(text):
        while len(sentence) > limit:
            cut = sentence.rfind(" ", 0, limit)
            cut = cut if cut > limit // 2 else limit
            yield sentence[:cut]
            sentence = sentence[cut:].lstrip()
        if sentence:
            yield sentence


def _tail(text: str, size: int) -> str:
    """The last whole sentences of ``text`` that fit in ``size`` characters (the overlap)."""
    if size <= 0:
        return ""
    kept: list[str] = []
    for sentence in reversed(_SENTENCE_END.split(text)):
        if sum(len(s) + 1 for s in kept) + len(sentence) > size:
            break
        kept.insert(0, sentence)
    return " ".join(kept)


def chunk_document(
    document: Document, *, max_chars: int = CHUNK_CHARS, overlap: int = OVERLAP_CHARS
) -> list[Chunk]:
    """Pack paragraphs into chunks of at most ``max_chars`` within one section and page, with overlap."""
    chunks: list[Chunk] = []
    current: list[str] = []
    where: tuple[int | None, str | None] | None = None
    fresh = False  # whether ``current`` holds more than the overlap carried from the previous chunk

    def emit() -> None:
        if current and fresh and where is not None:
            chunks.append(Chunk(" ".join(current), page=where[0], section=where[1]))

    for block in document.blocks:
        if (block.page, block.section) != where:
            emit()
            current, where, fresh = [], (block.page, block.section), False
        for piece in _sentences(block.text, max_chars - overlap):
            if current and fresh and len(" ".join(current)) + len(piece) + 1 > max_chars:
                emit()
                carried = _tail(" ".join(current), overlap)
                current, fresh = ([carried] if carried else []), False
            current.append(piece)
            fresh = True
    emit()
    return chunks
