"""Content that cannot call home, in headless Chromium against the real web server.

An operator uploads a markdown document with a remote image whose address is a listener this test runs
on another local port; a viewer finds the document through a knowledge search in the chat. The listener
counts the requests it gets: none may come from the chat. The control shows the same browser does fetch
that address when a page (without the chat's policy or its markdown handling) shows the image. Every
page of the server carries the Content-Security-Policy, whose script hashes match the page's inline
scripts, and the chat runs under it without a single violation.
"""

from __future__ import annotations

import http.server
import re
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistant.web.csp import inline_script_hashes
from tests.web.chromium import CHROMIUM, CHROMIUM_ARGS, require_chromium
from tests.web.conftest import WebServer, run_async

TIMEOUT_MS = 30_000
EMBEDDING_MS = 120_000
"""Ingesting and searching embed text; on a busy shared machine that alone can outlast TIMEOUT_MS."""
REPLY = '[data-step-type="assistant_message"]'
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360000002"
    "0000050001e226059b0000000049454e44ae426082"
)
VIOLATIONS = """window.__violations = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.__violations.push(`${e.effectiveDirective} ${e.blockedURI}`));"""
"""Run in every page before its own scripts: what the Content-Security-Policy refused."""

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class _Pixel(http.server.BaseHTTPRequestHandler):
    """Answers every GET with a 1x1 PNG and counts it: the tracker a document's image points at."""

    requests: list[str]

    def do_GET(self) -> None:
        self.requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(PNG)))
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()
        self.wfile.write(PNG)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def pixel() -> Iterator[tuple[str, list[str]]]:
    """The listener's base URL and the paths it was asked for."""
    requests: list[str] = []
    handler = type("Pixel", (_Pixel,), {"requests": requests})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def chromium(web_server: WebServer) -> Iterator[Any]:
    """The browser, started after the server (whose async set-up cannot run inside Playwright's loop)."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _signed_in(chromium: Any, server: WebServer, user: str, password: str) -> Any:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    context.add_init_script(VIOLATIONS)
    page = context.new_page()
    page.goto(f"{server.chat}/login")
    page.fill("#email", user)
    page.fill("#password", password)
    page.locator('button[type="submit"]').click()
    page.locator("#chat-input").wait_for()
    return page


def _send(page: Any, text: str) -> None:
    box = page.locator("#chat-input")
    box.fill(text)
    box.press("Enter")
    for _ in range(20):  # the page may still be connecting its socket: then the text stays in the box
        if not box.input_value():
            return
        page.wait_for_timeout(250)
    page.locator("#chat-submit").click()


def test_the_browser_fetches_the_image_of_a_page_without_the_policy(
    chromium: Any, pixel: tuple[str, list[str]]
) -> None:
    """The control: the listener sees the browser's request when nothing stops it."""
    url, requests = pixel
    page = chromium.new_page()
    page.set_content(f'<img id="x" src="{url}/control.png">')
    page.wait_for_function("() => document.getElementById('x').complete")
    page.close()
    assert requests == ["/control.png"]


def test_every_page_carries_a_policy_that_allows_its_inline_scripts(web_server: WebServer) -> None:
    for path in ("/chat", "/chat/login", "/chat/thread/123", "/"):
        response = httpx.get(f"{web_server.url}{path}", follow_redirects=True)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        policy = response.headers["content-security-policy"]
        directives = {part.split()[0]: part.split()[1:] for part in policy.split("; ")}
        assert directives["default-src"] == ["'self'"]
        hashes = inline_script_hashes(response.text)
        assert hashes and set(hashes) <= set(directives["script-src"])
        assert "'unsafe-inline'" not in directives["script-src"]
        assert not re.search(r"https?://", policy)


def test_a_documents_remote_image_is_never_fetched_by_another_user(
    web_server: WebServer, chromium: Any, pixel: tuple[str, list[str]], tmp_path: Path
) -> None:
    url, requests = pixel
    suffix = uuid.uuid4().hex[:6]
    author, reader = f"rita{suffix}", f"vera{suffix}"
    run_async(web_server.add_account(author, "rita-password-1", "operator"))
    run_async(web_server.add_account(reader, "vera-password-1", "viewer"))
    document = tmp_path / f"boiler-{suffix}.md"
    document.write_text(
        f"# Boiler {suffix}\n\nThe boiler service is due in March ![logo]({url}/pixel.png) "
        f"call Meyer Heating about boiler {suffix}.\n",
        encoding="utf-8",
    )

    rita = _signed_in(chromium, web_server, author, "rita-password-1")
    # Chainlit takes an upload only into a connected chat session (else 404, and the words go without the
    # file, as CI saw once in six runs); a first command answered proves the session is there.
    _send(rita, "what's the status")
    rita.locator(REPLY).filter(has_text="agent").first.wait_for()
    rita.locator('input[type="file"]').first.set_input_files(str(document))
    rita.get_by_text(document.name).first.wait_for()  # the attachment chip
    _send(rita, "please add this")
    added = rita.locator(REPLY).filter(has_text=f"Added 1 file ({document.name})").first
    try:
        added.wait_for(timeout=EMBEDDING_MS)
    except Exception as err:  # say what the page showed instead
        shown = rita.locator(REPLY).all_inner_texts()
        raise AssertionError(f"no 'Added 1 file' reply; the replies were {shown!r}") from err

    vera = _signed_in(chromium, web_server, reader, "vera-password-1")
    _send(vera, f"search the knowledge base for boiler {suffix}")
    reply = vera.locator(REPLY).filter(has_text="Meyer Heating").last
    reply.wait_for(timeout=EMBEDDING_MS)
    reply.locator(f'a[href="{url}/pixel.png"]').wait_for()  # the image, shown as a link
    vera.get_by_text("knowledge_search").first.click()  # open the step: its output shows the passage too
    vera.wait_for_function(
        "href => document.querySelectorAll(`a[href='${href}']`).length >= 2", arg=f"{url}/pixel.png"
    )
    assert vera.locator(f'img[src^="{url}"]').count() == 0
    vera.wait_for_timeout(1_000)  # time for any request to reach the listener
    violations = [page.evaluate("() => window.__violations") for page in (rita, vera)]
    for page in (rita, vera):
        page.context.close()
    assert requests == []
    assert violations == [[], []]  # nothing the chat needs is refused, and nothing even tried
