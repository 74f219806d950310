"""Text -> Notion blocks for write-back (pure), split at the API's limits.

A rich-text item holds at most 2,000 characters and a block at most 100 of them; a request appends at
most 100 blocks. Long text is cut at a line or word boundary near the limit, long blocks into several
blocks of the same kind, long block lists into several requests.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

__all__ = ["MAX_BLOCKS", "MAX_ITEMS", "MAX_TEXT", "batches", "rich_text", "text_blocks"]

MAX_TEXT = 2000
"""Characters per rich-text item."""
MAX_ITEMS = 100
"""Rich-text items per block."""
MAX_BLOCKS = 100
"""Blocks per create or append request."""

_HEADING = re.compile(r"^(#{1,3})\s+(.*)$")
_BULLET = re.compile(r"^\s*[-*•]\s+(.*)$")
_NUMBER = re.compile(r"^\s*\d+[.)]\s+(.*)$")
_TODO = re.compile(r"^\s*[-*]\s+\[([ xX])\]\s+(.*)$")
_LANGUAGES = frozenset(
    [
        "bash",
        "c",
        "c#",
        "c++",
        "css",
        "diff",
        "docker",
        "go",
        "graphql",
        "html",
        "java",
        "javascript",
        "json",
        "kotlin",
        "makefile",
        "markdown",
        "python",
        "ruby",
        "rust",
        "shell",
        "sql",
        "swift",
        "toml",
        "typescript",
        "xml",
        "yaml",
    ]
)


def _pieces(text: str, limit: int = MAX_TEXT) -> Iterator[str]:
    """``text`` in pieces of at most ``limit`` characters, cut after a newline or a space when one is
    in the second half of the window (never inside a word that fits)."""
    while len(text) > limit:
        cut = max(text.rfind("\n", 0, limit), text.rfind(" ", 0, limit))
        cut = cut + 1 if cut >= limit // 2 else limit
        yield text[:cut]
        text = text[cut:]
    if text:
        yield text


def rich_text(text: str) -> list[dict[str, Any]]:
    """A rich-text array for ``text``, no item over 2,000 characters."""
    return [{"type": "text", "text": {"content": piece}} for piece in _pieces(text)]


def _block(kind: str, text: str, **extra: Any) -> Iterator[dict[str, Any]]:
    """One block of ``kind``, or several when the text needs more than 100 rich-text items."""
    items = rich_text(text)
    for start in range(0, max(len(items), 1), MAX_ITEMS):
        yield {
            "object": "block",
            "type": kind,
            kind: {"rich_text": items[start : start + MAX_ITEMS], **extra},
        }


def text_blocks(content: str) -> list[dict[str, Any]]:
    """Blocks for ``content``: '#'..'###' headings, '-'/'*' bullets, '1.' numbers, '- [ ]' to-dos,
    ``` fences as code, and paragraphs separated by blank lines."""
    blocks: list[dict[str, Any]] = []
    paragraph: list[str] = []
    fence: list[str] | None = None
    language = "plain text"

    def flush() -> None:
        if paragraph:
            blocks.extend(_block("paragraph", "\n".join(paragraph)))
            paragraph.clear()

    for line in content.splitlines():
        if fence is not None:
            if line.strip().startswith("```"):
                blocks.extend(_block("code", "\n".join(fence), language=language))
                fence = None
            else:
                fence.append(line)
            continue
        if line.strip().startswith("```"):
            flush()
            named = line.strip()[3:].strip().lower()
            language = named if named in _LANGUAGES else "plain text"
            fence = []
        elif not line.strip():
            flush()
        elif heading := _HEADING.match(line):
            flush()
            blocks.extend(_block(f"heading_{len(heading.group(1))}", heading.group(2).strip()))
        elif todo := _TODO.match(line):
            flush()
            blocks.extend(_block("to_do", todo.group(2).strip(), checked=todo.group(1) != " "))
        elif bullet := _BULLET.match(line):
            flush()
            blocks.extend(_block("bulleted_list_item", bullet.group(1).strip()))
        elif number := _NUMBER.match(line):
            flush()
            blocks.extend(_block("numbered_list_item", number.group(1).strip()))
        else:
            paragraph.append(line)
    if fence is not None:  # an unclosed fence: still code
        blocks.extend(_block("code", "\n".join(fence), language=language))
    flush()
    return blocks


def batches(blocks: list[dict[str, Any]], size: int = MAX_BLOCKS) -> Iterator[list[dict[str, Any]]]:
    """``blocks`` in requests of at most ``size``."""
    for start in range(0, len(blocks), size):
        yield blocks[start : start + size]
