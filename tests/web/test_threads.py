"""Threads in the web chat, in headless Chromium: the address carries the thread (a reload keeps the
conversation, its steps' Markdown intact), threads are named from their first command, the Status and
Approvals buttons act at once and make no empty thread, and two commands in one sentence get their reply
after both steps. Screenshots in ``test-artifacts/web/``."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.web.chromium import CHROMIUM
from tests.web.conftest import WebServer, run_async
from tests.web.test_browser import (  # noqa: F401  (outside_requests: a fixture)
    REPLY,
    USER_MESSAGE,
    ask_for_reply,
    login,
    new_page,
    outside_requests,
    shot,
)

assert CHROMIUM  # the module needs Chromium (conftest skips it, or fails it under CI=true, without)
ADMIN = ("tilda", "tilda-password-1")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def page(
    web_server: WebServer,
    browser: object,
    outside_requests: list[str],  # noqa: F811  (the fixture imported above)
) -> Iterator[object]:
    run_async(web_server.add_account(*ADMIN, "admin"))
    page = new_page(browser, outside_requests)
    login(page, web_server, *ADMIN)
    page.locator("#chat-input").wait_for()  # type: ignore[attr-defined]
    yield page
    page.context.close()  # type: ignore[attr-defined]


def _threads(page: object) -> list[str]:
    history = page.locator("#thread-history a")  # type: ignore[attr-defined]
    return [history.nth(i).inner_text().strip() for i in range(history.count())]


def test_buttons_threads_and_reload(page: object, web_server: WebServer) -> None:
    # Status and Approvals act on click: the panel opens, the box gets no chip, no thread is made.
    page.get_by_role("button", name="Status", exact=True).click()  # type: ignore[attr-defined]
    page.get_by_text("agents are up").last.wait_for()  # type: ignore[attr-defined]
    age = re.compile(r"^(just now|\d+ (s|min) ago) \(\d\d:\d\d:\d\d\)$")  # not a raw ISO moment
    page.get_by_text(age).first.wait_for()  # type: ignore[attr-defined]  # the Status panel's heartbeats
    assert page.locator("#chat-input").input_value() == ""  # type: ignore[attr-defined]
    page.get_by_role("button", name="Approvals", exact=True).click()  # type: ignore[attr-defined]
    page.get_by_text("No approvals are waiting").last.wait_for()  # type: ignore[attr-defined]
    shot(page, "40-status-and-approvals")
    page.reload()  # type: ignore[attr-defined]
    page.locator("#chat-input").wait_for()  # type: ignore[attr-defined]
    page.wait_for_timeout(1500)  # type: ignore[attr-defined]  # the sidebar's thread list has loaded
    assert _threads(page) == [], _threads(page)

    # Two commands in one sentence: both steps, then one reply under them.
    reply = ask_for_reply(page, "remember that my shell is fish and show the last 3 audit entries")
    page.wait_for_timeout(500)  # type: ignore[attr-defined]
    steps = page.get_by_text("Used memory_remember").or_(page.get_by_text("Used audit_recent"))  # type: ignore[attr-defined]
    assert steps.count() == 2
    answer = page.locator(REPLY).filter(has_text="fish").last  # type: ignore[attr-defined]
    assert page.locator(REPLY).filter(has_text="fish").count() == 1  # type: ignore[attr-defined]  # one bubble
    assert answer.bounding_box()["y"] > steps.last.bounding_box()["y"]  # under both steps
    assert "fish" in reply
    assert "/thread/" in page.url  # type: ignore[attr-defined]  # the address carries the thread
    thread_url = page.url  # type: ignore[attr-defined]
    shot(page, "41-two-commands")

    # A reload keeps the conversation; the step's result is Markdown, not a code block with literal **.
    page.reload()  # type: ignore[attr-defined]
    page.locator(USER_MESSAGE).filter(has_text="my shell is fish").first.wait_for()  # type: ignore[attr-defined]
    page.locator(REPLY).filter(has_text="fish").first.wait_for()  # type: ignore[attr-defined]
    assert page.url == thread_url  # type: ignore[attr-defined]
    page.get_by_text("Used memory_remember").first.click()  # type: ignore[attr-defined]
    agent = page.get_by_text("agent memory").first  # type: ignore[attr-defined]  # "— agent **memory** · …"
    agent.wait_for()
    assert "**" not in agent.inner_text()
    shot(page, "42-reloaded")
    assert _threads(page)[0].startswith("remember that my shell is fish"), _threads(page)
    assert "fish" in ask_for_reply(page, "what is my shell").lower()  # the resumed thread takes turns
