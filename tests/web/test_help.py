"""Help in the web chat: "help" lists the commands a person may run (every agent's for an admin, fewer
for a viewer), and a reply that understood nothing offers clickable suggestions, never a dangerous one.

The browser part runs in one session per person (headless Chromium, screenshots in
``test-artifacts/web/``); the lists themselves are checked on the catalog without a browser.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from agents.system import help_for, template_examples
from tests.web.chromium import CHROMIUM
from tests.web.conftest import WebServer, run_async
from tests.web.test_browser import (  # noqa: F401  (outside_requests: a fixture)
    REPLY,
    USER_MESSAGE,
    ask_for_reply,
    login,
    new_page,
    outside_requests,
    send,
    shot,
)
from tools import Risk, builtin_catalog

assert CHROMIUM  # the module needs Chromium (conftest skips it, or fails it under CI=true, without)
ADMIN, VIEWER = ("hanna", "hanna-password-1"), ("vicky", "vicky-password-1")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_help_lists_what_each_role_may_run() -> None:
    catalog = builtin_catalog()
    admin = help_for(catalog, "admin", template_examples())
    viewer = help_for(catalog, "viewer", template_examples())
    admin_tools = {c.tool for a in admin.agents for c in a.commands}
    viewer_tools = {c.tool for a in viewer.agents for c in a.commands}
    said = {name for name, examples in template_examples().items() if examples}
    # every agent of the catalog with a command one can say, and every such command except the upload one
    assert {a.agent for a in admin.agents} == {t.agent for t in catalog if t.name in said}
    assert admin_tools == said - {"knowledge_ingest"}
    assert viewer_tools < admin_tools
    assert all(catalog.get(name).risk is Risk.READ for name in viewer_tools)
    assert "approvals_decide" not in viewer_tools and "memory_forget" not in viewer_tools
    assert "“forget my editor” — " in admin.summary() and "waits for an approval" in admin.summary()


@pytest.fixture(scope="module")
def pages(
    web_server: WebServer,
    browser: object,
    outside_requests: list[str],  # noqa: F811  (the fixture imported above)
) -> Iterator[tuple[object, object]]:
    """An admin's page and a viewer's page, each signed in."""
    run_async(web_server.add_account(*ADMIN, "admin"))
    run_async(web_server.add_account(*VIEWER, "viewer"))
    opened = []
    for user, password in (ADMIN, VIEWER):
        page = new_page(browser, outside_requests)
        login(page, web_server, user, password)
        page.locator("#chat-input").wait_for()  # type: ignore[attr-defined]
        opened.append(page)
    yield opened[0], opened[1]
    for page in opened:
        page.context.close()  # type: ignore[attr-defined]


def test_help_and_suggestions_in_the_page(pages: tuple[object, object], web_server: WebServer) -> None:
    admin, viewer = pages
    # The first screen: starters from the catalog, no LLM footer (no LLM is configured), our logo.
    starters = admin.locator("#starters button")  # type: ignore[attr-defined]
    starters.first.wait_for()
    labels = [starters.nth(i).inner_text().strip().lower() for i in range(starters.count())]
    assert any("help" in label for label in labels) and not any("forget" in label for label in labels), labels
    assert len(labels) >= 4
    assert admin.locator(".watermark:visible").count() == 0  # type: ignore[attr-defined]
    logo = httpx.get(f"{web_server.chat}/logo?theme=light").text
    assert "Kommandant" in logo
    shot(admin, "20-first-screen")

    reply = ask_for_reply(admin, "help")
    shot(admin, "21-help-admin")
    for agent in ("bots", "knowledge", "memory", "reminders", "scheduler", "system"):
        assert agent in reply, agent
    assert "forget my editor" in reply and "approve 3f2a9c" in reply
    seen = ask_for_reply(viewer, "what can you do")
    shot(viewer, "22-help-viewer")
    assert "memory" in seen and "what is my editor" in seen
    assert "forget my editor" not in seen and "remember that" not in seen and "approve" not in seen
    assert len(seen) < len(reply)

    # No match: up to three chips, said once, none dangerous; a click runs that command.
    text = ask_for_reply(admin, "blorp the frobnicator about my editor")
    chips = admin.locator(REPLY).last.get_by_role("button").filter(has_text=re.compile(r"\w"))  # type: ignore[attr-defined]
    names = [chips.nth(i).inner_text().strip() for i in range(chips.count())]
    shot(admin, "23-no-match-chips")
    assert 1 <= len(names) <= 3, names
    assert "forget" not in " ".join(names)
    assert text.count(names[0]) <= 1  # the reply names it at most once (the chip), not twice
    before = admin.locator(USER_MESSAGE).count()  # type: ignore[attr-defined]
    replies = admin.locator(REPLY).count()  # type: ignore[attr-defined]
    chips.first.click()
    admin.locator(USER_MESSAGE).nth(before).wait_for()  # type: ignore[attr-defined]
    assert admin.locator(USER_MESSAGE).last.inner_text().strip() == names[0]  # type: ignore[attr-defined]
    admin.wait_for_function(  # type: ignore[attr-defined]
        "n => document.querySelectorAll('[data-step-type=\"assistant_message\"]').length > n", arg=replies
    )
    shot(admin, "24-chip-ran")
    assert "didn't understand" not in admin.locator(REPLY).last.inner_text()  # type: ignore[attr-defined]
