"""Markdown that cannot call home, and the Content-Security-Policy: pure functions over inline text."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from assistant.web.content import fetches, without_remote_images
from assistant.web.csp import DIRECTIVES, ContentPolicy, inline_script_hashes

PIXEL = "http://127.0.0.1:9/pixel.png"


@pytest.mark.parametrize(
    ("markdown", "shown"),
    [
        (f"![x]({PIXEL})", f"\\![x]({PIXEL})"),
        (f'Boiler ![logo]({PIXEL} "title") notes', f'Boiler \\![logo]({PIXEL} "title") notes'),
        (f"![x][pixel]\n\n[pixel]: {PIXEL}", f"\\![x][pixel]\n\n[pixel]: {PIXEL}"),
        (f"![pixel]\n\n[pixel]: {PIXEL}", f"\\![pixel]\n\n[pixel]: {PIXEL}"),
        (f"[![x]({PIXEL})](http://example.org)", f"[\\![x]({PIXEL})](http://example.org)"),
        (f"> - ![a ![b]({PIXEL})]({PIXEL})", f"> - \\![a \\![b]({PIXEL})]({PIXEL})"),
        (f"![clip]({PIXEL[:-4]}.mp4)", f"\\![clip]({PIXEL[:-4]}.mp4)"),
        (f"\\\\![x]({PIXEL})", f"\\\\\\![x]({PIXEL})"),  # an escaped backslash, then an image
    ],
)
def test_every_image_becomes_a_link_to_its_address(markdown: str, shown: str) -> None:
    assert fetches(markdown)
    assert without_remote_images(markdown) == shown
    assert not fetches(shown)
    assert any(href.startswith(PIXEL[:-4]) for href in _links(shown))  # shown as a link to its address


def _links(markdown: str) -> list[str]:
    tokens = MarkdownIt("commonmark").parse(markdown)
    children = [child for token in tokens for child in token.children or ()]
    return [str(child.attrs["href"]) for child in children if child.type == "link_open"]


@pytest.mark.parametrize(
    ("markdown", "shown"),
    [
        (f'<img src="{PIXEL}">', f'\\<img src="{PIXEL}">'),
        (
            f"text <picture><source srcset={PIXEL}></picture>",
            f"text \\<picture>\\<source srcset={PIXEL}>\\</picture>",
        ),
        (
            '<div style="background:url(x)">\n\nhi\n</div>',
            '\\<div style="background:url(x)">\n\nhi\n\\</div>',
        ),
        ("<!-- a comment -->", "\\<!-- a comment -->"),
    ],
)
def test_raw_html_shows_as_text(markdown: str, shown: str) -> None:
    assert fetches(markdown)
    assert without_remote_images(markdown) == shown
    assert not fetches(shown)


@pytest.mark.parametrize(
    "markdown",
    [
        "Call Meyer Heating on 0711 555 2020!",
        "a < b and b > c, 1 <2",
        "see <https://example.org/page> or write to <ops@example.org>",
        f"[a link]({PIXEL}) is only followed when clicked",
        f"already escaped: \\![x]({PIXEL}) and \\<img>",
        "",
    ],
)
def test_text_without_images_or_html_is_unchanged(markdown: str) -> None:
    assert without_remote_images(markdown) == markdown


def test_code_keeps_its_text() -> None:
    markdown = (
        f"Embed it with `![x]({PIXEL})` or ``<img src=`{PIXEL}`>``:\n\n"
        f'```html\n<img src="{PIXEL}">\n![x]({PIXEL})\n```\n\n'
        f"    ![indented]({PIXEL})\n\n"
        f"> ```\n> ![quoted]({PIXEL})\n> ```\n\n"
        f"But this one is an image: ![x]({PIXEL})"
    )
    shown = without_remote_images(markdown)
    assert shown == markdown.replace("is an image: ![x]", "is an image: \\![x]")
    assert not fetches(shown)


def test_where_scan_and_parser_disagree_everything_is_escaped() -> None:
    # The <pre> block ends on its closing tag, so the indented line after it is code; once the tags are
    # escaped it is part of a paragraph. The result is checked, and escaped throughout instead.
    markdown = f"<pre>\nx\n</pre>\n    ![x]({PIXEL})"
    shown = without_remote_images(markdown)
    assert not fetches(shown)
    assert shown == f"\\<pre>\nx\n\\</pre>\n    \\![x]({PIXEL})"


def test_an_unclosed_backtick_is_no_code_span() -> None:
    markdown = f"a ` stray backtick, then ![x]({PIXEL})\n\nand a `` code span``"
    shown = without_remote_images(markdown)
    assert not fetches(shown)
    assert "\\![x]" in shown and "`` code span``" in shown


MARKDOWN_PIECES = st.sampled_from(
    ["!", "[", "]", "(", ")", "<", ">", "`", "``", "```", "\\", "\n", "\n\n", "    ", "> ", "- ", " ",
     "x", "img", "a", "/", "pre", "div", ":", "http", "!--", "=", '"', "*", "|", "---", "~~~"]
)  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(MARKDOWN_PIECES, max_size=40).map("".join))
def test_no_markdown_fetches_anything_once_shown(markdown: str) -> None:
    shown = without_remote_images(markdown)
    assert not fetches(shown)
    assert shown.replace("\\", "") == markdown.replace("\\", "")  # only backslashes are added


# --- the policy -------------------------------------------------------------------------------------

PAGE = """<!doctype html><html><head>
<script>
undefined
undefined
</script>
    <script>
      const global = globalThis;
    </script>
    <script type="module" crossorigin src="/chat/assets/index.js"></script>
</head><body><div id="root"></div></body></html>"""


def _hash(script: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"


def test_inline_scripts_are_allowed_by_their_hashes_and_nothing_else() -> None:
    hashes = inline_script_hashes(PAGE)
    assert hashes == (_hash("\nundefined\nundefined\n"), _hash("\n      const global = globalThis;\n    "))
    header = ContentPolicy.for_page(PAGE).header()
    directives = {part.split()[0]: part.split()[1:] for part in header.split("; ")}
    assert directives["script-src"] == ["'self'", "blob:", *hashes]
    assert "'unsafe-inline'" not in directives["script-src"]
    assert "'unsafe-eval'" not in directives["script-src"]


def test_every_source_is_this_server_or_made_in_the_page() -> None:
    header = ContentPolicy.for_page(PAGE).header()
    sources = {source for part in header.split("; ") for source in part.split()[1:]}
    assert sources - {"'self'", "'none'", "'unsafe-inline'", "blob:", "data:"} == set(
        inline_script_hashes(PAGE)
    )
    assert DIRECTIVES["default-src"] == ("'self'",)
    assert DIRECTIVES["object-src"] == ("'none'",)
    assert "*" not in header and "http" not in header and "ws:" not in header
