"""Notion blocks -> a ``Document`` for the knowledge base (pure; the fetch is ``sync.page_tree``).

Structure a reader needs is kept as Markdown-like text: headings (which also start a section, so each
chunk knows the heading it sits under), bulleted, numbered and to-do lists with their nesting, code in
fences, tables as rows of cells, quotes and toggles with their children. Files and images keep only their
captions: their URLs are signed and expire within an hour.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from agents.documents import Block, Document

__all__ = ["page_document", "page_title", "plain_text"]

Json = Mapping[str, Any]

_HEADINGS = {"heading_1": 1, "heading_2": 2, "heading_3": 3, "heading_4": 4}
_LISTS = frozenset({"bulleted_list_item", "numbered_list_item", "to_do"})
_CONTAINERS = frozenset({"column_list", "column", "synced_block", "template"})
_CAPTIONED = frozenset({"image", "video", "file", "pdf", "audio", "embed", "bookmark", "link_preview"})


def plain_text(rich_text: Iterable[Json] | None) -> str:
    """The text of a rich-text array (mentions and equations as Notion renders them)."""
    parts = []
    for item in rich_text or ():
        text = item.get("plain_text")
        if text is None:
            text = (item.get("text") or {}).get("content", "")
        parts.append(str(text))
    return "".join(parts)


def page_title(page: Json) -> str:
    """The page's title (the one property of type title), or "Untitled"."""
    for prop in (page.get("properties") or {}).values():
        if isinstance(prop, Mapping) and prop.get("type") == "title":
            return plain_text(prop.get("title")).strip() or "Untitled"
    return "Untitled"


def _body(block: Json) -> Json:
    value = block.get(str(block.get("type")))
    return value if isinstance(value, Mapping) else {}


def _children(block: Json) -> list[Json]:
    return list(block.get("children") or ())


def _table(block: Json) -> list[str]:
    rows = []
    header = bool(_body(block).get("has_column_header"))
    for number, row in enumerate(_children(block)):
        cells = [" ".join(plain_text(cell).split()) for cell in _body(row).get("cells", [])]
        rows.append("| " + " | ".join(cells) + " |")
        if number == 0 and header:
            rows.append("|" + "---|" * len(cells))
    return rows


def _lines(block: Json, depth: int, number: int = 1) -> list[str]:
    """The block as text lines, its children indented under it."""
    kind = str(block.get("type"))
    body = _body(block)
    text = plain_text(body.get("rich_text"))
    pad = "  " * depth
    if kind == "table":
        return [pad + row for row in _table(block)]
    if kind in _CONTAINERS:
        return _many(_children(block), depth)
    if kind == "code":
        language = body.get("language") or ""
        return [f"{pad}```{language}", *(pad + line for line in text.splitlines()), f"{pad}```"]
    if kind in _HEADINGS:
        head = "#" * _HEADINGS[kind] + " " + text
    elif kind == "bulleted_list_item":
        head = f"- {text}"
    elif kind == "numbered_list_item":
        head = f"{number}. {text}"
    elif kind == "to_do":
        head = f"- [{'x' if body.get('checked') else ' '}] {text}"
    elif kind == "quote":
        head = f"> {text}"
    elif kind == "callout":
        emoji = (body.get("icon") or {}).get("emoji") or ""
        head = f"{emoji} {text}".strip()
    elif kind == "equation":
        head = str(body.get("expression", ""))
    elif kind == "child_page":
        head = f"Sub-page: {body.get('title', '')}"
    elif kind == "child_database":
        head = f"Database: {body.get('title', '')}"
    elif kind in _CAPTIONED:
        head = plain_text(body.get("caption"))
        if kind in ("bookmark", "embed", "link_preview") and body.get("url"):
            head = f"{head} ({body['url']})" if head else str(body["url"])
    elif kind in ("paragraph", "toggle", "template"):
        head = text
    else:  # divider, breadcrumb, table_of_contents, unsupported: no text
        head = ""
    nested = 1 if kind in _LISTS or kind == "toggle" else 0
    lines = [pad + head] if head.strip() else []
    return lines + _many(_children(block), depth + nested if lines else depth)


def _many(blocks: list[Json], depth: int) -> list[str]:
    lines: list[str] = []
    number = 0
    for block in blocks:
        number = number + 1 if block.get("type") == "numbered_list_item" else 0
        lines += _lines(block, depth, number)
    return lines


def page_document(page: Json, blocks: Sequence[Json]) -> Document:
    """The page as a document: the title first, then one block per paragraph-like piece, a list or a
    table kept whole, each under the heading it follows (``Block.section``)."""
    title = page_title(page)
    out: list[Block] = [Block(title)]
    section: str | None = None
    run: list[str] = []  # consecutive list items: one block, so a list is never cut from its lead-in

    def flush() -> None:
        if run:
            out.append(Block("\n".join(run), section=section))
            run.clear()

    number = 0
    for block in blocks:
        kind = str(block.get("type"))
        number = number + 1 if kind == "numbered_list_item" else 0
        if kind in _HEADINGS:
            flush()
            section = plain_text(_body(block).get("rich_text")).strip() or section
        if kind in _LISTS:
            run.extend(_lines(block, 0, number))
            continue
        flush()
        text = "\n".join(_lines(block, 0, number)).strip("\n")
        if text.strip():
            out.append(Block(text, section=section))
    flush()
    return Document(title=title, mime_type="text/markdown", blocks=out)
