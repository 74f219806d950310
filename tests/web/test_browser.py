"""The web chat end to end in headless Chromium: login, steps, approvals, history, isolation, bad input.

The tests run in file order on one server (Chainlit is one app per process): first the auto-login of
the embedded default (no account yet), then with accounts. Screenshots of each stage go to
``test-artifacts/web/``. Every request the page makes is recorded; none may leave 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.web.chromium import FIRST_TOKEN_PROBE
from tests.web.conftest import ARTIFACTS, WebServer, run_async

REPLY = '[data-step-type="assistant_message"]'
USER_MESSAGE = '[data-step-type="user_message"]'
TIMEOUT_MS = 30_000
FIRST_TOKEN_RUNS = 5

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def outside_requests() -> list[str]:
    """URLs the pages asked for that were not on the local server (filled by ``new_page``)."""
    return []


def new_page(browser: object, outside: list[str]) -> object:
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.on(
        "request",
        lambda request: (
            None
            if request.url.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:"))
            else outside.append(request.url)
        ),
    )
    return page


def shot(page: object, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def send(page: object, text: str) -> None:
    box = page.locator("#chat-input")  # type: ignore[attr-defined]
    box.fill(text)
    box.press("Enter")
    for _ in range(20):  # the page may still be connecting its socket: then the text stays in the box
        if not box.input_value():
            return
        page.wait_for_timeout(250)  # type: ignore[attr-defined]
    page.locator("#chat-submit").click()  # type: ignore[attr-defined]


def last_reply(page: object, containing: str) -> object:
    reply = page.locator(REPLY).filter(has_text=containing).last  # type: ignore[attr-defined]
    try:
        reply.wait_for()
    except Exception:
        shot(page, f"failed-waiting-for-{containing[:20].replace(' ', '-')}")
        raise
    return reply


def ask_for_reply(page: object, text: str) -> str:
    """Send ``text`` and return the text of the reply that arrives for it (not an earlier one)."""
    replies = page.locator(REPLY)  # type: ignore[attr-defined]
    before = replies.count()
    send(page, text)
    page.wait_for_function(  # type: ignore[attr-defined]
        "n => document.querySelectorAll('[data-step-type=\"assistant_message\"]').length > n", arg=before
    )
    page.wait_for_timeout(200)  # type: ignore[attr-defined]
    return str(replies.last.inner_text())


def login(page: object, server: WebServer, user: str, password: str) -> None:
    page.goto(f"{server.chat}/login")  # type: ignore[attr-defined]
    page.fill("#email", user)  # type: ignore[attr-defined]
    page.fill("#password", password)  # type: ignore[attr-defined]
    page.locator('button[type="submit"]').click()  # type: ignore[attr-defined]


def test_auto_login_without_accounts(
    web_server: WebServer, browser: object, outside_requests: list[str]
) -> None:
    page = new_page(browser, outside_requests)
    page.goto(web_server.chat)  # type: ignore[attr-defined]
    page.get_by_text("signed in automatically as the local admin").wait_for()  # type: ignore[attr-defined]
    shot(page, "00-auto-login")
    send(page, "what's the status")
    last_reply(page, "agents")
    page.context.close()  # type: ignore[attr-defined]


def test_wrong_password_is_refused_clearly(
    web_server: WebServer, browser: object, outside_requests: list[str]
) -> None:
    run_async(web_server.add_account("alice", "alice-password-1", "admin"))
    run_async(web_server.add_account("bob", "bob-password-12", "operator"))
    config = httpx.get(f"{web_server.chat}/auth/config").json()
    assert config["headerAuth"] is False  # no more auto-login once an account exists
    assert httpx.post(f"{web_server.chat}/auth/header").status_code == 401
    page = new_page(browser, outside_requests)
    login(page, web_server, "alice", "not-her-password")
    page.get_by_text("Wrong user name or password").first.wait_for()  # type: ignore[attr-defined]
    shot(page, "01-wrong-password")
    assert "/login" in page.url  # type: ignore[attr-defined]
    assert httpx.get(f"{web_server.url}/healthz").json() == {"status": "ok"}
    page.context.close()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def alice(web_server: WebServer, browser: object, outside_requests: list[str]) -> Iterator[object]:
    page = new_page(browser, outside_requests)
    login(page, web_server, "alice", "alice-password-1")
    page.locator("#chat-input").wait_for()  # type: ignore[attr-defined]
    yield page
    page.context.close()  # type: ignore[attr-defined]


def test_remember_and_recall_with_steps(alice: object, web_server: WebServer) -> None:
    page = alice
    send(page, "remember that my editor is neovim")
    reply = last_reply(page, "neovim")
    step = page.get_by_text("memory_remember").first  # type: ignore[attr-defined]
    step.wait_for()
    shot(page, "02-remember")
    # The tool step is shown above the reply it led to (the page lists a turn's items in order).
    assert step.bounding_box()["y"] < reply.bounding_box()["y"]  # type: ignore[attr-defined]
    # Warm up (the first recall loads the embedding model), then measure a few turns of two
    # template-matched commands: one whose tool embeds the question (memory), one that does not.
    assert "neovim" in ask_for_reply(page, "what is my editor").lower()
    page.get_by_text("memory_recall").first.wait_for()  # type: ignore[attr-defined]
    figures = {
        command: _first_token_ms(page, command, expect)
        for command, expect in (("what is my editor", "neovim"), ("what's the status", "agents"))
    }
    report = {
        command: {
            "runs_ms": [round(x, 1) for x in runs],
            "median_ms": round(statistics.median(runs), 1),
            "min_ms": round(min(runs), 1),
        }
        for command, runs in figures.items()
    }
    (ARTIFACTS / "first_token.json").write_text(
        json.dumps(
            {"enter_to_first_token": report, "target_ms": 150, "load_average_1m": os.getloadavg()[0]},
            indent=2,
        )
    )
    for command, row in report.items():
        print(
            f"\nEnter -> first reply token, {command!r}: median {row['median_ms']} ms (min {row['min_ms']})"
        )
    shot(page, "03-recall")
    # The target (150 ms) is reported, not asserted: this box is shared and its load varies.
    assert all(row["median_ms"] < 5_000 for row in report.values())


def _first_token_ms(page: object, command: str, expect: str) -> list[float]:
    """Enter -> first reply text in the page, for ``FIRST_TOKEN_RUNS`` turns of ``command``."""
    runs = []
    for _ in range(FIRST_TOKEN_RUNS):
        before = page.locator(REPLY).count()  # type: ignore[attr-defined]
        page.evaluate(FIRST_TOKEN_PROBE)  # type: ignore[attr-defined]
        send(page, command)
        page.wait_for_function("() => window.__firstTokenAt !== null")  # type: ignore[attr-defined]
        enter, first = page.evaluate("() => [window.__enterAt, window.__firstTokenAt]")  # type: ignore[attr-defined]
        assert enter is not None
        runs.append(first - enter)
        page.wait_for_function(  # type: ignore[attr-defined]
            "n => document.querySelectorAll('[data-step-type=\"assistant_message\"]').length > n", arg=before
        )
        assert expect in page.locator(REPLY).last.inner_text().lower()  # type: ignore[attr-defined]
        page.wait_for_timeout(200)  # type: ignore[attr-defined]  # the turn's last updates
    return runs


def test_dangerous_tool_waits_for_approve(alice: object) -> None:
    page = alice
    send(page, "forget my editor")
    approve = page.get_by_role("button", name="Approve")  # type: ignore[attr-defined]
    approve.wait_for()
    page.get_by_text("needs approval").last.wait_for()  # type: ignore[attr-defined]
    shot(page, "04-approval-asked")
    approve.click()
    page.get_by_text("memory_forget").first.wait_for()  # type: ignore[attr-defined]
    last_reply(page, "Approved by")
    last_reply(page, "Forgotten")  # the tool ran after the click
    shot(page, "05-approved-and-run")
    assert "neovim" not in ask_for_reply(page, "what is my editor").lower()


def test_reload_resumes_the_thread(alice: object) -> None:
    page = alice
    page.reload()  # type: ignore[attr-defined]
    _open_latest_thread(page)
    thread_url = page.url  # type: ignore[attr-defined]
    shot(page, "06-resumed")
    assert "agents" in ask_for_reply(page, "what's the status").lower()  # the resumed thread takes turns
    # Leave it, then open it again: the message sent after resuming is part of the thread.
    page.locator("#new-chat-button").click()  # type: ignore[attr-defined]
    _confirm_new_chat(page)
    page.locator(USER_MESSAGE).first.wait_for(state="detached")  # type: ignore[attr-defined]
    _open_latest_thread(page)
    assert page.url == thread_url  # type: ignore[attr-defined]
    page.locator(USER_MESSAGE).filter(has_text="what's the status").first.wait_for()  # type: ignore[attr-defined]
    shot(page, "06b-reopened")
    assert "remember" in ask_for_reply(page, "what is my editor").lower()  # forgotten after the approval


def _open_latest_thread(page: object) -> None:
    history = page.locator("#thread-history a")  # type: ignore[attr-defined]
    history.first.wait_for()
    history.first.click()
    page.wait_for_url("**/thread/**")  # type: ignore[attr-defined]
    _wait_for_history(page)


def _wait_for_history(page: object) -> None:
    """The resumed thread shows the earlier messages, replies and tool steps, not a spinner."""
    user_messages = page.locator(USER_MESSAGE)  # type: ignore[attr-defined]
    user_messages.filter(has_text="remember that my editor is neovim").first.wait_for()
    page.locator(REPLY).filter(has_text="neovim").first.wait_for()  # type: ignore[attr-defined]
    page.get_by_text("memory_remember").first.wait_for()  # type: ignore[attr-defined]
    user_messages.filter(has_text="forget my editor").first.wait_for()


def _confirm_new_chat(page: object) -> None:
    confirm = page.locator("#confirm")  # type: ignore[attr-defined]
    try:
        confirm.wait_for(timeout=2_000)
    except Exception:
        return  # no confirmation asked (nothing to lose)
    confirm.click()


def test_second_user_cannot_see_the_first_users_thread(
    alice: object, web_server: WebServer, browser: object, outside_requests: list[str]
) -> None:
    thread_url = alice.url  # type: ignore[attr-defined]
    assert "/thread/" in thread_url
    page = new_page(browser, outside_requests)
    login(page, web_server, "bob", "bob-password-12")
    page.locator("#chat-input").wait_for()  # type: ignore[attr-defined]
    page.wait_for_timeout(1000)  # type: ignore[attr-defined]
    assert page.locator("#thread-history a").count() == 0  # type: ignore[attr-defined]
    page.goto(thread_url)  # type: ignore[attr-defined]
    page.wait_for_timeout(2000)  # type: ignore[attr-defined]
    shot(page, "07-other-user")
    assert page.get_by_text("my editor is neovim").count() == 0  # type: ignore[attr-defined]
    thread_id = thread_url.rsplit("/", 1)[-1]
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}  # type: ignore[attr-defined]
    response = httpx.get(f"{web_server.chat}/project/thread/{thread_id}", cookies=cookies)
    assert response.status_code in (401, 403, 404)
    page.context.close()  # type: ignore[attr-defined]


def test_bad_input_gets_clear_messages(alice: object, web_server: WebServer, tmp_path: Path) -> None:
    """A 1 MB message and an unsupported upload get a sentence each; the server keeps serving."""
    page = alice
    page.locator("#new-chat-button").click()  # type: ignore[attr-defined]
    _confirm_new_chat(page)
    huge = ("lorem ipsum dolor sit amet " * 40_000)[:1_000_000]  # 1 MB, 100 times the turn limit
    reply = ask_for_reply(page, huge)  # fill() sets the whole value in one step, no keystrokes
    assert "1,000,000 characters long" in reply and "at most 10,000" in reply
    shot(page, "08-huge-message")
    assert httpx.get(f"{web_server.url}/healthz").json() == {"status": "ok"}
    bad = tmp_path / "report.exe"
    bad.write_bytes(b"MZ\x90\x00not a document")
    page.locator('input[type="file"]').first.set_input_files(str(bad))  # type: ignore[attr-defined]
    page.get_by_text("report.exe").first.wait_for()  # type: ignore[attr-defined]  # the attachment chip
    reply = ask_for_reply(page, "please read this")
    replies = page.locator(REPLY).filter(has_text="unsupported file type")  # type: ignore[attr-defined]
    replies.first.wait_for()
    assert "report.exe" in replies.first.inner_text()
    shot(page, "09-unsupported-upload")
    assert "agents" in ask_for_reply(page, "what's the status").lower()  # still answering
    assert httpx.get(f"{web_server.url}/healthz").json() == {"status": "ok"}


def test_no_request_left_the_machine(outside_requests: list[str]) -> None:
    assert outside_requests == []
