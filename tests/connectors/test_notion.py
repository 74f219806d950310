"""Notion: blocks to text and text to blocks (pure), then the sync and write-back through the real
notion-client against a local server speaking the Notion API, on the real database and embedding model."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from agents.notion.blocks import page_document
from agents.notion.writeback import batches, text_blocks
from assistant.events import Failed, ToolFinished, Turn
from assistant.runtime import Runtime
from connectors.base import ConnectorError, HealthState
from connectors.notion import NotionConnector
from settings import Settings
from storage import Database
from storage.notion import NotionRepository
from tests.connectors.notion_server import BASE, TOKEN, NotionServer, block, table
from tests.knowledge.conftest import embedder  # noqa: F401  (the session's embedding model fixture)
from tools.builtin import knowledge as knowledge_tools
from tools.builtin import notion as notion_tools
from tools.definition import ToolDefinition


def _settings(db: Database, tmp_path: Path, notion: NotionServer, **more: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "database_url": db.url,
        "amqp_url": None,
        "llm_model": "",
        "notion_token": SecretStr(TOKEN),
        "notion_base_url": notion.url,
        "notion_sync_interval": 0,
        "notion_max_wait": 10,
        "call_timeout": 120.0,  # a loaded machine must not turn a sync into "still running"
        **more,
    }
    return Settings.model_validate(values)


async def _call(rt: Runtime, tool: ToolDefinition, arguments: dict[str, Any], role: str = "admin") -> Any:
    """Run one tool through the Kommandant (policy, bus, agent) and return its finished event."""
    assert rt.kommandant is not None
    turn = Turn(text=f"test {tool.name}", user="ann", channel="cli", role=role)  # type: ignore[arg-type]
    finished = [e async for e in rt.kommandant.run_tool(tool, arguments, turn) if isinstance(e, ToolFinished)]
    assert finished, f"{tool.name} did not run"
    return finished[-1]


def _runbook() -> list[dict[str, Any]]:
    return [
        block("heading_1", "Backups"),
        block("paragraph", "The zebrafish cluster is backed up nightly at 02:00."),
        block(
            "bulleted_list_item", "Check the tapes", [block("bulleted_list_item", "label them in teal ink")]
        ),
        block("numbered_list_item", "Rotate keys"),
        block("numbered_list_item", "Restart the vault"),
        block("code", "pg_dump -Fc zebrafish > z.dump", language="bash"),
        table([["Host", "Slot"], ["zebra-1", "A3"]]),
        block("toggle", "Details", [block("paragraph", "Restores take forty minutes.")]),
    ]


# -- pure ----------------------------------------------------------------------------------------------


def test_blocks_become_text_keeping_structure() -> None:
    page = {"properties": {"Name": {"type": "title", "title": [{"plain_text": "Runbook"}]}}}
    document = page_document(page, _runbook())
    texts = [b.text for b in document.blocks]
    assert document.title == "Runbook" and texts[0] == "Runbook"
    assert "# Backups" in texts
    assert "- Check the tapes\n  - label them in teal ink\n1. Rotate keys\n2. Restart the vault" in texts
    assert "```bash\npg_dump -Fc zebrafish > z.dump\n```" in texts
    assert "| Host | Slot |\n|---|---|\n| zebra-1 | A3 |" in texts
    assert "Details\n  Restores take forty minutes." in texts
    assert {b.section for b in document.blocks[1:]} == {"Backups"}


def test_text_becomes_blocks_split_at_the_limits() -> None:
    long = ("word " * 900).strip()  # 4,499 characters: three rich-text items
    content = (
        "# Report\n\n"
        + long
        + "\n\n"
        + "\n".join(f"- item {i}" for i in range(150))
        + "\n```python\nx = 1\n```"
    )
    blocks = text_blocks(content)
    assert blocks[0]["type"] == "heading_1" and blocks[-1]["type"] == "code"
    assert blocks[-1]["code"]["language"] == "python"
    paragraph = blocks[1]["paragraph"]["rich_text"]
    assert [len(i["text"]["content"]) <= 2000 for i in paragraph] == [True, True, True]
    assert "".join(i["text"]["content"] for i in paragraph) == long
    assert len(blocks) == 153 and [len(b) for b in batches(blocks)] == [100, 53]
    huge = text_blocks("x" * 250_000)  # more than 100 items of 2,000: two paragraph blocks
    assert [len(b["paragraph"]["rich_text"]) for b in huge] == [100, 25]


# -- through the API -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("embedder")  # the model loaded once for the run, not inside a tool call
async def test_sync_imports_incrementally_removes_trash_and_waits_out_429(
    db: Database, tmp_path: Path
) -> None:
    with NotionServer(max_page_size=2) as notion:
        source = notion.data_source()
        runbook = notion.add_page("Backup runbook", _runbook(), source=source, edited=BASE)
        badge = [block("paragraph", "New people get a yellow badge from reception.")]
        onboarding = notion.add_page("Onboarding", badge, source=source, edited=notion.later(1))
        holidays = notion.add_page(
            "Holidays",
            [block("paragraph", "The office closes for the quokka festival.")],
            source=source,
            edited=notion.later(2),
        )
        wifi = notion.add_page("Office wifi", [block("paragraph", "The guest network is called kumquat.")])
        settings = _settings(db, tmp_path, notion, notion_data_sources=[source], notion_pages=[wifi])
        async with Runtime(settings, agents=["knowledge", "notion"], database=db) as rt:
            first = await _call(rt, notion_tools.SYNC, {})
            assert first.ok and first.structured["finished"], (first.text, notion.requests[-3:])
            by_source = {s["source"]: s for s in first.structured["sources"]}
            assert by_source[source]["imported"] == 3 and by_source[wifi]["imported"] == 1
            assert len(notion.of("POST", "/query")) == 2  # three pages, two per response: cursor followed
            nested = [r for r in notion.requests if r.path.endswith("/children")]
            assert len(nested) > 4  # page children over two responses, and the nested list and toggle

            search = await _call(rt, knowledge_tools.SEARCH, {"query": "zebrafish backed up nightly"})
            top = search.structured["hits"][0]
            assert top["source"] == notion.pages[runbook]["url"] and "zebrafish" in top["snippet"]
            wifi_hit = await _call(rt, knowledge_tools.SEARCH, {"query": "kumquat"})
            assert wifi_hit.structured["hits"][0]["source"] == notion.pages[wifi]["url"]

            # Second sync: only the edited page is read again (plus the overlap window's de-duplication).
            notion.requests.clear()
            notion.edit(
                onboarding, [block("paragraph", "New people get a violet badge now.")], notion.later(9)
            )
            second = await _call(rt, notion_tools.SYNC, {})
            ds = next(s for s in second.structured["sources"] if s["source"] == source)
            assert ds["imported"] == 1 and ds["removed"] == 0
            read = {r.path.split("/")[3] for r in notion.of("GET", "/children")}
            assert runbook not in read and holidays not in read and onboarding in read
            violet = await _call(rt, knowledge_tools.SEARCH, {"query": "violet badge"})
            assert violet.structured["hits"][0]["source"] == notion.pages[onboarding]["url"]
            yellow = await _call(rt, knowledge_tools.SEARCH, {"query": "yellow badge reception"})
            assert all("yellow" not in h["snippet"] for h in yellow.structured["hits"])

            # A third sync right away: nothing changed, nothing imported (de-duplicated by content).
            third = await _call(rt, notion_tools.SYNC, {})
            assert sum(s["imported"] for s in third.structured["sources"]) == 0

            # Trash: gone from queries; the full reconciliation removes it. A 429 on the way is waited out.
            notion.trash(holidays)
            notion.requests.clear()
            notion.rate_limit("/query", retry_after=1)
            full = await _call(rt, notion_tools.SYNC, {"full": True})
            assert full.ok, full.text
            ds = next(s for s in full.structured["sources"] if s["source"] == source)
            assert ds["removed"] == 1 and ds["errors"] == [] and ds["pages"] == 2
            limited, retried = notion.of("POST", "/query")[:2]
            assert limited.status == 429 and retried.status == 200 and retried.at - limited.at >= 1.0
            quokka = await _call(rt, knowledge_tools.SEARCH, {"query": "quokka festival"})
            gone = notion.pages[holidays]["url"]
            assert all(
                h["source"] != gone and "quokka" not in h["snippet"] for h in quokka.structured["hits"]
            )

            statuses = {s.source_id: s for s in await NotionRepository(db.sessionmaker).statuses()}
            assert statuses[source].pages == 2 and statuses[source].last_ok_at is not None
            assert statuses[source].reconciled_at is not None and statuses[wifi].kind == "page"

            from assistant.cli.doctor import check_notion

            checks = {c.name: c for c in await check_notion(settings)}
            assert checks["notion"].status == "ok" and "Kommandant test" in checks["notion"].detail
            assert checks[f"notion sync {source[:13]}"].status == "ok"


@pytest.mark.usefixtures("embedder")  # the model loaded once for the run, not inside a tool call
async def test_write_back_splits_at_limits_and_conflicts_make_a_new_page(
    db: Database, tmp_path: Path
) -> None:
    with NotionServer() as notion:
        source = notion.data_source(title_property="Title")
        parent = notion.add_page("Reports", [])
        plan = notion.add_page("Plan", [block("paragraph", "Ship on Friday.")], edited=notion.later(0))
        settings = _settings(db, tmp_path, notion, notion_data_sources=[source], notion_pages=[plan])
        async with Runtime(settings, agents=["knowledge", "notion"], database=db) as rt:
            long = ("word " * 900).strip()
            content = long + "\n\n" + "\n".join(f"- item {i}" for i in range(150))
            notion.rate_limit("/v1/pages", retry_after=1, status=529)  # overloaded: waited out too
            made = await _call(
                rt, notion_tools.CREATE_PAGE, {"parent": parent, "title": "Weekly", "content": content}
            )
            assert made.ok, made.text
            assert made.structured["blocks"] == 151 and made.structured["requests"] == 2
            overloaded, create = notion.of("POST", "/v1/pages")[:2]
            assert overloaded.status == 529 and create.at - overloaded.at >= 1.0
            append = notion.of("PATCH", "/children")[0]
            assert len(create.body["children"]) == 100 and len(append.body["children"]) == 51
            assert create.body["parent"] == {"type": "page_id", "page_id": parent}
            new_id = made.structured["page_id"]
            written = notion.text_of(new_id)
            assert written[0] == ("paragraph", long) and written[-1] == ("bulleted_list_item", "item 149")
            assert all(r.status == 200 for r in notion.requests[1:])

            in_source = await _call(
                rt, notion_tools.CREATE_PAGE, {"parent": source, "content": "Retro notes"}
            )
            assert in_source.ok, in_source.text
            assert notion.of("POST", "/v1/pages")[-1].body["parent"]["data_source_id"] == source

            assert (await _call(rt, notion_tools.SYNC, {})).ok
            appended = await _call(rt, notion_tools.APPEND, {"page": plan, "content": "Also: tell QA."})
            assert appended.ok and appended.structured["conflict"] is None
            assert notion.text_of(plan)[-1] == ("paragraph", "Also: tell QA.")

            # Edited in Notion since the last sync, and local text for it: Notion wins, the text goes to a
            # new page under it, and the conflict is reported and counted.
            # (an hour from now: after the append above, which the server stamps with today's time)
            notion.edit(plan, [block("paragraph", "Ship on Monday.")], datetime.now(UTC) + timedelta(hours=1))
            clash = await _call(rt, notion_tools.APPEND, {"page": plan, "content": "Friday is fine."})
            assert clash.ok and "changed in Notion" in clash.structured["conflict"]
            assert notion.text_of(plan) == [("paragraph", "Ship on Monday.")]
            note = notion.pages[clash.structured["page_id"]]
            assert note["parent"] == {"type": "page_id", "page_id": plan}
            assert notion.text_of(note["id"]) == [("paragraph", "Friday is fine.")]
            status = {s.source_id: s for s in await NotionRepository(db.sessionmaker).statuses()}[plan]
            assert status.conflicts == 1 and "conflict" in status.errors[-1]

            # One sync at a time over every replica: Postgres' advisory lock, held here by "another one".
            async with NotionRepository(db.sessionmaker).sync_lock() as held:
                assert held
                busy = await _call(rt, notion_tools.SYNC, {})
                assert not busy.ok and "Another Kommandant process is syncing" in busy.text
            assert (await _call(rt, notion_tools.SYNC, {})).ok

            assert rt.kommandant is not None
            turn = Turn(text="append", user="vic", channel="cli", role="viewer")
            events = [
                e
                async for e in rt.kommandant.run_tool(
                    notion_tools.APPEND, {"page": plan, "content": "x"}, turn
                )
            ]
            assert any(isinstance(e, Failed) for e in events)  # a write: a viewer is refused by policy
            assert not any(isinstance(e, ToolFinished) for e in events)


async def test_connector_health_up_then_down(tmp_path: Path) -> None:
    with NotionServer() as notion:
        settings = Settings.model_validate(
            {"data_dir": tmp_path, "notion_token": TOKEN, "notion_base_url": notion.url}
        )
        connector = NotionConnector(settings)
        await connector.start()
        health = await connector.health()
        assert health.state is HealthState.UP and "Kommandant test" in health.detail
        assert notion.requests[-1].path == "/v1/users/me"
        wrong = NotionConnector(settings.model_copy(update={"notion_token": SecretStr("ntn_wrong")}))
        with pytest.raises(ConnectorError, match="401"):
            await wrong.start()
        down = await wrong.health()
        assert down.state is HealthState.DOWN and "ntn_wrong" not in down.detail
        await wrong.stop()
    gone = await connector.health()
    assert gone.state is HealthState.DOWN
    await connector.stop()


def test_cli_sync_prints_progress(db: Database, tmp_path: Path) -> None:
    from tests.test_cli import cli

    with NotionServer() as notion:
        source = notion.data_source()
        notion.add_page("Handbook", [block("paragraph", "Lunch is at noon in the atrium.")], source=source)
        env = {
            "KOMMANDANT_DATABASE_URL": db.url,
            "KOMMANDANT_DATA_DIR": str(tmp_path / "data"),
            "KOMMANDANT_LLM_MODEL": "",
            "KOMMANDANT_NOTION_TOKEN": TOKEN,
            "KOMMANDANT_NOTION_BASE_URL": notion.url,
            "KOMMANDANT_NOTION_DATA_SOURCES": source,
            "KOMMANDANT_NOTION_SYNC_INTERVAL": "0",
        }
        started = time.monotonic()
        result = cli("notion", "sync", env=env, timeout=300)
        assert result.returncode == 0, result.stderr + result.stdout
        assert "1: Handbook" in result.stdout and "1 imported" in result.stdout, result.stdout
        assert TOKEN not in result.stdout + result.stderr
        assert time.monotonic() - started < 120


def test_settings_lists_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOMMANDANT_NOTION_DATA_SOURCES", "a1,b2")
    monkeypatch.setenv("KOMMANDANT_NOTION_PAGES", '["p1"]')
    monkeypatch.setenv("KOMMANDANT_NOTION_TOKEN", "")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.notion_data_sources == ["a1", "b2"] and settings.notion_pages == ["p1"]
    assert settings.notion_token is None
