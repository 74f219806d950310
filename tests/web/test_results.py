"""Results people can read in the web chat: every item of a list result as a table row (in the step and in
the reply), knowledge hits as source chips that open their passage with its source, and approval cards in
words that show the decision in every open tab.

Pure parts (the table, the chips) are checked without a browser; the page in headless Chromium, one
session per person, screenshots in ``test-artifacts/web/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest

from tests.web.chromium import CHROMIUM
from tests.web.conftest import WebServer, run_async
from tests.web.test_browser import (  # noqa: F401  (outside_requests: a fixture)
    REPLY,
    ask_for_reply,
    login,
    new_page,
    outside_requests,
    send,
    shot,
)

assert CHROMIUM  # the module needs Chromium (conftest skips it, or fails it under CI=true, without)
ADMIN = ("rosa", "rosa-password-1")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


BERLIN = ZoneInfo("Europe/Berlin")


def test_every_item_of_a_list_is_a_row_with_local_times() -> None:
    from assistant.web.render import list_table

    rows = [
        {
            "seq": i,
            "ts": "2026-11-29T17:00:00+00:00",
            "actor": "rosa",
            "kind": "turn",
            "summary": f"entry {i}",
        }
        for i in range(7)
    ]
    table = list_table({"rows": rows}, "The last 7 audit entries; newest: #0 rosa: entry 0", BERLIN)
    lines = table.splitlines()
    assert lines[0] == "| seq | ts | actor | kind | summary |"
    assert len(lines) == 2 + 7  # header, rule, every row
    assert "| 2026-11-29 18:00 |" in lines[2]  # in the person's time zone
    reminders = {"reminders": [{"id": "0123456789abcdef", "text": "a|b", "due": None, "status": "pending"}]}
    assert "| 01234567 | a\\|b | — | pending |" in list_table(reminders, "You have 1 reminder", BERLIN)
    # nothing to add when the sentence names every item already, or there is no list
    assert list_table({"agents": [{"agent": "memory"}]}, "**memory**: ...", BERLIN) == ""
    assert list_table({"count": 3}, "3", BERLIN) == ""


def test_knowledge_hits_become_chips_naming_their_source() -> None:
    from assistant.web.render import list_table, passage_chips

    hits = {
        "query": "backups",
        "hits": [
            {
                "id": "1",
                "title": "Ops handbook",
                "snippet": "1. Stop\n2. Copy",
                "score": 0.9,
                "source": "ops.pdf",
                "page": 3,
                "section": "Backups",
            },
            {"id": "2", "title": None, "snippet": "Backups run at night", "score": 0.5, "source": "rosa"},
        ],
    }
    chips = passage_chips(hits)
    assert [c.name for c in chips] == ["[1] Ops handbook, p. 3, § Backups", "[2] rosa"]
    assert "source: ops.pdf" in str(chips[0].content) and "page 3" in str(chips[0].content)
    assert "1. Stop\n2. Copy" in str(chips[0].content)  # numbered steps kept as written
    assert list_table(hits, "", BERLIN) == ""  # chips, not a table


def test_status_heartbeats_are_ages_with_local_times() -> None:
    from datetime import datetime, timedelta

    from assistant.web.render import ago, status_table
    from tools.builtin.system import AgentStatus, SystemStatus

    now = datetime.fromisoformat("2026-11-29T17:00:10+00:00")
    assert [ago(now - timedelta(seconds=s), now) for s in (-2, 3, 125, 7_300, 200_000)] == [
        "just now",
        "3 s ago",
        "2 min ago",
        "2 h ago",
        "2 d ago",
    ]
    status = SystemStatus(
        agents=[
            AgentStatus(
                name="memory",
                alive=True,
                instances=1,
                tools=["memory_recall"],
                last_heartbeat=now - timedelta(seconds=3),
            ),
            AgentStatus(name="bots", alive=False),
        ]
    )
    rows = status_table(status, now, BERLIN).splitlines()
    assert rows[2] == "| memory | up | 1 | 3 s ago (18:00:07) | memory_recall |"  # no raw ISO moment
    assert rows[3] == "| bots | down | 0 | — |  |"


@pytest.fixture(scope="module")
def pages(
    web_server: WebServer,
    browser: object,
    outside_requests: list[str],  # noqa: F811  (the fixture imported above)
) -> Iterator[tuple[object, object]]:
    """An admin's page in Berlin time, and the same admin in a second tab."""
    run_async(web_server.add_account(*ADMIN, "admin"))
    context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id=BERLIN.key)  # type: ignore[attr-defined]
    context.set_default_timeout(30_000)
    admin = context.new_page()
    login(admin, web_server, *ADMIN)
    admin.locator("#chat-input").wait_for()
    second = context.new_page()  # same login, another tab
    yield admin, second
    context.close()


def test_lists_chips_and_cards_in_the_page(pages: tuple[object, object], web_server: WebServer) -> None:
    admin, second = pages
    # five audit rows, in the step and in the reply
    reply = admin.locator(REPLY)  # type: ignore[attr-defined]
    ask_for_reply(admin, "what's the status")  # a turn's rows: more than five in the trail
    ask_for_reply(admin, "show the last 5 audit entries")
    table = reply.last.locator("table")
    table.locator("tbody tr").nth(4).wait_for()
    assert table.locator("tbody tr").count() == 5
    shot(admin, "30-audit-five-rows")

    # knowledge: every hit a chip; a click opens the passage with its source in the side panel
    for note in (
        "backups run at night on the nas",
        "backups are kept for thirty days",
        "backups are tested monthly",
    ):
        ask_for_reply(admin, f"add a note saying {note}")
    ask_for_reply(admin, "search the knowledge base for backups")
    links = reply.last.locator("a", has_text="[")
    links.nth(2).wait_for()  # the chips come with the finished reply, after its first words
    assert links.count() >= 3, reply.last.inner_text()
    chip = links.nth(1).inner_text().split("] ", 1)[1].strip().lower()
    links.nth(1).click()
    source = admin.get_by_text("source:").last  # type: ignore[attr-defined]  # only the open passage says so
    source.wait_for()
    shot(admin, "31-knowledge-chip-open")
    opened = source.locator("xpath=ancestor::*[3]").inner_text().lower()
    assert chip in opened and "rosa" in opened, opened  # the passage, with its document and source

    # the chips are kept with the thread: after a reload, a chip still opens its passage with its source
    admin.reload()  # type: ignore[attr-defined]
    links = admin.locator(REPLY).filter(has_text="Sources:").last.locator("a", has_text="[")  # type: ignore[attr-defined]
    links.nth(2).wait_for()  # given back when the thread is resumed
    links.nth(1).click()
    source = admin.get_by_text("source:").last  # type: ignore[attr-defined]
    source.wait_for()
    shot(admin, "31-knowledge-chip-after-reload")
    assert chip in source.locator("xpath=ancestor::*[3]").inner_text().lower()

    # the chips are kept with the thread: after a reload, a chip still opens its passage with its source
    admin.reload()  # type: ignore[attr-defined]
    links = admin.locator(REPLY).filter(has_text="Sources:").last.locator("a", has_text="[")  # type: ignore[attr-defined]
    links.nth(2).wait_for()  # sent again when the thread is resumed
    links.nth(1).click()
    source = admin.get_by_text("source:").last  # type: ignore[attr-defined]
    source.wait_for()
    shot(admin, "31-knowledge-chip-after-reload")
    assert chip in source.locator("xpath=ancestor::*[3]").inner_text().lower()

    # a dangerous command: the card says what will happen; approve in one tab, the other tab shows it
    ask_for_reply(admin, "remember that my editor is neovim")
    send(admin, "forget my editor")
    admin.get_by_text("Will delete the memory").last.wait_for()  # type: ignore[attr-defined]
    second.goto(web_server.chat)  # type: ignore[attr-defined]
    second.locator("#chat-input").wait_for()  # type: ignore[attr-defined]
    second.get_by_role("button", name="Approvals", exact=True).click()  # type: ignore[attr-defined]
    second.get_by_text("Will delete the memory").last.wait_for()  # type: ignore[attr-defined]
    card_text = admin.get_by_text("Will delete the memory").last.inner_text()  # type: ignore[attr-defined]
    assert "neovim" in card_text  # the memory that would go, in words
    assert "Europe/Berlin" in admin.locator(REPLY).filter(has_text="Will delete the memory").last.inner_text()  # type: ignore[attr-defined]
    shot(admin, "32-card-in-words")
    admin.get_by_role("button", name="Approve", exact=True).last.click()  # type: ignore[attr-defined]
    second.get_by_text("Approved by rosa").last.wait_for()  # type: ignore[attr-defined]
    shot(second, "33-second-tab-decided")
    card = second.locator(REPLY).filter(has_text="Will delete the memory").last  # type: ignore[attr-defined]
    assert card.get_by_role("button", name="Approve", exact=True).count() == 0
