"""Approvals in the web chat, in headless Chromium: a person's own waiting approval never stops them
chatting; an approval decided while they wait runs in their turn; one decided after they left (the page
was reloaded, which ends the waiting turn) runs detached and its result appears in their thread."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from storage import Database
from storage.approvals import ApprovalRepository
from tests.web.chromium import CHROMIUM
from tests.web.conftest import WebServer, run_async
from tests.web.test_browser import (  # noqa: F401  (outside_requests: a fixture)
    REPLY,
    USER_MESSAGE,
    ask_for_reply,
    last_reply,
    login,
    new_page,
    outside_requests,
    send,
    shot,
)

assert CHROMIUM  # the module needs Chromium (conftest skips it, or fails it under CI=true, without)
OPERATOR, ADMIN = ("olga", "olga-password-1"), ("adam", "adam-password-1")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def pages(
    web_server: WebServer,
    browser: object,
    outside_requests: list[str],  # noqa: F811  (the fixture imported above)
) -> Iterator[tuple[object, object]]:
    """An operator's page and an admin's page, each signed in."""
    run_async(web_server.add_account(*OPERATOR, "operator"))
    run_async(web_server.add_account(*ADMIN, "admin"))
    opened = []
    for user, password in (OPERATOR, ADMIN):
        page = new_page(browser, outside_requests)
        login(page, web_server, user, password)
        page.locator("#chat-input").wait_for()  # type: ignore[attr-defined]
        opened.append(page)
    yield opened[0], opened[1]
    for page in opened:
        page.context.close()  # type: ignore[attr-defined]


def ask_for_approval(page: object, text: str) -> str:
    """Send a dangerous command and return the short id of its approval, as the page tells the operator."""
    notes = page.get_by_text("An admin decides it")  # type: ignore[attr-defined]
    before = notes.count()
    send(page, text)
    note = notes.nth(before)  # this command's, not an earlier one's
    note.wait_for()
    found = re.search(r"approve ([0-9a-f]{8})", note.inner_text())
    assert found, note.inner_text()
    return found.group(1)


def wait_until_it_stops_waiting(web_server: WebServer, short: str) -> None:
    """The server notices a page has gone when its socket closes (at once, or at the socket's next
    missed ping): from then on the approval's requester no longer waits."""

    async def waiting() -> bool:
        async with Database(web_server.database_url, migrate=False) as db:
            return (await ApprovalRepository(db.sessionmaker).find(short)).requester_waiting

    deadline = time.monotonic() + 60
    while run_async(waiting()):
        assert time.monotonic() < deadline, "the turn of a page that left still waits"
        time.sleep(0.5)


def test_the_requester_keeps_chatting_and_gets_the_result_in_its_turn(pages: tuple[object, object]) -> None:
    olga, adam = pages
    assert "less" in ask_for_reply(olga, "remember that my pager is less")
    short = ask_for_approval(olga, "forget my pager")
    assert olga.get_by_role("button", name="Approve").count() == 0  # type: ignore[attr-defined]
    shot(olga, "approvals-01-waiting")
    # While the approval waits, the same person's next message is answered.
    assert "agents" in ask_for_reply(olga, "what's the status").lower()
    assert "remember" in ask_for_reply(olga, "what is my editor").lower()
    decided = ask_for_reply(adam, "show pending approvals")
    assert "the requester is waiting" in decided, decided
    send(adam, f"approve {short}")
    last_reply(adam, "The requester is waiting")
    last_reply(olga, "Forgotten")  # the waiting turn ran it and showed its result
    shot(olga, "approvals-02-run-in-turn")
    assert "less" not in ask_for_reply(olga, "what is my pager").lower()


def test_an_approval_decided_after_the_requester_left_shows_its_result_in_the_thread(
    pages: tuple[object, object], web_server: WebServer
) -> None:
    olga, adam = pages
    assert "fish" in ask_for_reply(olga, "remember that my shell is fish")
    short = ask_for_approval(olga, "forget my shell")
    olga.reload()  # type: ignore[attr-defined]  # the page leaves: its waiting turn ends
    history = olga.locator("#thread-history a")  # type: ignore[attr-defined]
    history.first.wait_for()
    history.first.click()
    olga.wait_for_url("**/thread/**")  # type: ignore[attr-defined]
    olga.locator(USER_MESSAGE).filter(has_text="forget my shell").first.wait_for()  # type: ignore[attr-defined]
    wait_until_it_stops_waiting(web_server, short)
    listed = ask_for_reply(adam, "show pending approvals")
    assert "the requester left; the result will be sent to their web chat thread" in listed, listed
    send(adam, f"approve {short}")
    decided = last_reply(adam, "had left").inner_text()  # type: ignore[attr-defined]
    assert "web chat thread" in decided, decided
    assert "fish" not in decided  # the result is the requester's, not the approver's
    result = last_reply(olga, "Approved memory_forget ran")
    assert "fish" in result.inner_text()  # type: ignore[attr-defined]
    shot(olga, "approvals-03-result-after-leaving")
    assert olga.locator(REPLY).filter(has_text="Approved memory_forget ran").count() == 1  # type: ignore[attr-defined]
    assert "fish" not in ask_for_reply(olga, "what is my shell").lower()
