"""Markdown that cannot call home: what the chat shows from documents, memory, the audit trail and other
people renders no image and no raw HTML, so showing it makes the browser fetch nothing.

An image in markdown (``![x](http://tracker.example/pixel.png)``, ``![x][ref]``, ``![ref]``) is fetched by
the reader's browser the moment it is shown: a tracking pixel in an uploaded document would tell its
author who searched the knowledge base, and when. ``without_remote_images`` escapes the ``!`` of every
image, so each one shows as a link to its address (opened only when clicked), and the ``<`` of every raw
HTML tag, so a tag shows as the text it is (``<img src=…>``, whatever ``unsafe_allow_html`` says).
Code blocks and code spans keep their text as written. The page's Content-Security-Policy
(``assistant.web.csp``) blocks what might still slip through; this keeps the chat readable and the
policy's console quiet.

Pure functions over strings; the markdown parser (markdown-it-py, CommonMark like the chat's
react-markdown) only checks the result.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from markdown_it import MarkdownIt

_PARSER = MarkdownIt("commonmark").enable("table")
_FETCHING_TOKENS = frozenset({"image", "html_inline", "html_block"})
_CODE_BLOCKS = frozenset({"fence", "code_block"})

_IMAGE = re.compile(r"!(?=\[)")
_TAG = re.compile(r"<(?=[A-Za-z/!?])")
"""The start of raw HTML: an opening or closing tag, a comment, a declaration or an instruction."""
_AUTOLINK = re.compile(
    r"<(?:[A-Za-z][A-Za-z0-9+.-]{1,31}:[^\s<>]*"  # <https://example.org/page>
    r"|[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*)>"  # <someone@example.org>
)
"""An autolink is a link, not HTML: it stays."""
_BACKTICKS = re.compile(r"`+")


def without_remote_images(markdown: str) -> str:
    """``markdown`` with every image shown as a link to its address and every raw HTML tag shown as
    text; code keeps its text. Showing the result makes the browser fetch nothing.

    Escaping is exact where the parser agrees with the scan for code; where it does not (unusual
    nesting of HTML blocks and indented code), everything is escaped, code included: a stray
    backslash in code rather than an image that loads.
    """
    if "![" not in markdown and _TAG.search(markdown) is None:
        return markdown
    inert = _escape(markdown, _code_block_lines(markdown), code_spans=True)
    if fetches(inert):
        inert = _escape(markdown, frozenset(), code_spans=False)
    return inert


def fetches(markdown: str) -> bool:
    """Whether ``markdown`` renders something a browser would load or run: an image or raw HTML."""
    return any(
        token.type in _FETCHING_TOKENS
        or any(child.type in _FETCHING_TOKENS for child in token.children or ())
        for token in _PARSER.parse(markdown)
    )


def _code_block_lines(markdown: str) -> frozenset[int]:
    """Numbers of the lines inside fenced or indented code blocks (at any depth: lists, quotes)."""
    lines: set[int] = set()
    for token in _PARSER.parse(markdown):
        if token.type in _CODE_BLOCKS and token.map is not None:
            lines.update(range(*token.map))
    return frozenset(lines)


def _escape(markdown: str, code_lines: frozenset[int], *, code_spans: bool) -> str:
    """Escape images and tags in every run of lines outside ``code_lines``; keep code blocks as they are."""
    out: list[str] = []
    prose: list[str] = []
    for number, line in enumerate(markdown.splitlines(keepends=True)):
        if number in code_lines:
            out.append(_escape_prose("".join(prose), code_spans))
            prose.clear()
            out.append(line)
        else:
            prose.append(line)
    out.append(_escape_prose("".join(prose), code_spans))
    return "".join(out)


def _escape_prose(text: str, code_spans: bool) -> str:
    if not text:
        return text
    out: list[str] = []
    start = 0
    for span_start, span_end in _code_spans(text) if code_spans else ():
        out.append(_escape_text(text[start:span_start], text, start))
        out.append(text[span_start:span_end])
        start = span_end
    out.append(_escape_text(text[start:], text, start))
    return "".join(out)


def _escape_text(piece: str, whole: str, offset: int) -> str:
    """Put a backslash before each image ``!`` and tag ``<`` in ``piece`` that is not escaped already
    (preceded by an odd number of backslashes in ``whole``, which ``piece`` starts at ``offset`` in)."""
    marks = [m.start() for m in _IMAGE.finditer(piece)]
    marks += [m.start() for m in _TAG.finditer(piece) if not _AUTOLINK.match(piece, m.start())]
    if not marks:
        return piece
    out: list[str] = []
    last = 0
    for position in sorted(marks):
        if _escaped(whole, offset + position):
            continue
        out.append(piece[last:position])
        out.append("\\")
        last = position
    out.append(piece[last:])
    return "".join(out)


def _escaped(text: str, position: int) -> bool:
    backslashes = 0
    while position - backslashes > 0 and text[position - backslashes - 1] == "\\":
        backslashes += 1
    return backslashes % 2 == 1


def _code_spans(text: str) -> Iterable[tuple[int, int]]:
    """Start and end of each code span: a run of backticks up to the next run of the same length
    (CommonMark); a run that is escaped or never closed is plain text."""
    position = 0
    while (opening := _BACKTICKS.search(text, position)) is not None:
        if _escaped(text, opening.start()):
            position = opening.start() + 1
            continue
        width = len(opening.group())
        closing = next((m for m in _BACKTICKS.finditer(text, opening.end()) if len(m.group()) == width), None)
        if closing is None:
            position = opening.end()
            continue
        yield opening.start(), closing.end()
        position = closing.end()
