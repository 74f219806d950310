"""Chat uploads reach the knowledge base through the knowledge agent's ingest tool, never in the web
process: staged in Postgres, ingested by the agent (in this process, or a worker on RabbitMQ), with the
same policy and audit as a typed command. No browser: ``assistant.uploads`` is what the chat calls."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from pydantic import SecretStr
from sqlalchemy import func, select, update

from assistant.events import Role, Turn
from assistant.reads import ToolReadError, call_tool, read_model
from assistant.runtime import Runtime
from assistant.uploads import ingest_uploads
from bus.rabbit import Topology, delete_topology
from settings import Settings
from storage import Database
from storage.models import StagedUpload
from storage.uploads import StagedUploadRepository
from tools.builtin import knowledge as knowledge_tools
from tools.builtin.knowledge import KnowledgeList

NOTES = "# Boiler\n\nThe boiler service is due in March. Call Meyer Heating on 0711 555 2020."


def _turn(user: str = "ann", role: Role = "operator") -> Turn:
    return Turn(text="[upload]", user=user, channel="web", thread="thread-1", role=role)


def _files(folder: Path) -> list[tuple[str, Path]]:
    (folder / "notes.md").write_text(NOTES)
    (folder / "tool.exe").write_bytes(b"MZ\x90\x00not a document")
    (folder / "huge.txt").write_text("x" * 5_000)
    return [(name, folder / name) for name in ("notes.md", "tool.exe", "huge.txt")]


async def _staged(db: Database) -> int:
    async with db.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(StagedUpload)) or 0)


def _embedded(settings: Settings) -> Settings:
    return settings.model_copy(update={"llm_model": "", "heartbeat_interval": 0.5})


async def test_uploads_are_ingested_by_the_knowledge_agent_through_its_tool(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    seen: list[tuple[str, int, int]] = []

    async def progress(name: str, number: int, total: int) -> None:
        seen.append((name, number, total))

    async with Runtime(_embedded(settings), agents=["knowledge", "system"], database=db) as rt:
        assert rt.kommandant is not None and rt.services is not None
        turn = _turn()
        outcome = await ingest_uploads(
            rt.kommandant, _files(tmp_path), turn, max_bytes=1_000, progress=progress
        )
        assert outcome.stopped is None
        files = {f.name: f for f in outcome.result.files}
        assert files["notes.md"].error is None and files["notes.md"].chunks >= 1
        assert (
            files["tool.exe"].error == "tool.exe: unsupported file type .exe (use txt, md, pdf, docx or html)"
        )
        assert files["huge.txt"].error == "huge.txt: 5 kB is over the 1 kB limit per file"
        text = outcome.text()
        assert text.startswith("Added 1 file (notes.md) to the knowledge base as 1 passage.")
        assert "\n- tool.exe: unsupported file type .exe" in text
        assert [number for _, number, _ in seen] == [1, 2, 3]

        rows = await rt.services.audit.tail(100)
        ingest = knowledge_tools.INGEST.name
        calls = [r for r in rows if r.kind == "tool_call" and r.tool == ingest]
        assert len(calls) == 2  # the file over the limit was refused before it was staged
        assert {(r.actor, r.channel, r.data["agent"]) for r in calls} == {("ann", "web", "knowledge")}
        results = [r for r in rows if r.kind == "tool_result" and r.tool == ingest]
        assert len(results) == 2 and all(r.data["ok"] for r in results)
        assert NOTES[10:40] not in str([r.data for r in rows])  # the document text is never audited
        assert await _staged(db) == 0  # the agent deleted what it read

        listed = await read_model(rt.kommandant, knowledge_tools.LIST, {}, turn, KnowledgeList)
        assert [(e.title, e.source) for e in listed.entries] == [("Boiler", "notes.md")]
        again = await ingest_uploads(rt.kommandant, _files(tmp_path)[:1], turn, max_bytes=1_000)
        assert again.text() == "Already there: notes.md."


async def test_a_viewer_may_not_add_documents_and_nothing_stays_staged(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    async with Runtime(_embedded(settings), agents=["knowledge"], database=db) as rt:
        assert rt.kommandant is not None
        outcome = await ingest_uploads(
            rt.kommandant, _files(tmp_path)[:2], _turn("vic", "viewer"), max_bytes=1_000
        )
    assert outcome.result.files == []
    assert outcome.not_read == ("notes.md", "tool.exe")
    assert outcome.text() == (
        "Not added: notes.md, tool.exe. As a viewer you may not run "
        f"{knowledge_tools.INGEST.name} ({knowledge_tools.INGEST.risk} tool)."
    )
    assert await _staged(db) == 0


async def test_a_staged_upload_is_only_its_owners_and_stale_ones_are_purged(
    db: Database, settings: Settings
) -> None:
    staging = StagedUploadRepository(db.sessionmaker)
    bobs = await staging.stage(owner="bob", name="bob.md", content=b"# Secret\n\nBob's plans.")
    async with Runtime(_embedded(settings), agents=["knowledge"], database=db) as rt:
        assert rt.kommandant is not None
        with pytest.raises(ToolReadError, match=r"no uploaded file .* waiting for you"):
            await call_tool(rt.kommandant, knowledge_tools.INGEST, {"id": str(bobs)}, _turn("ann"))
        assert await _staged(db) == 1
        async with db.sessionmaker() as session, session.begin():
            old = datetime.now(UTC) - timedelta(hours=2)
            await session.execute(update(StagedUpload).values(created_at=old))
        assert await staging.purge_stale() == 1
        assert await _staged(db) == 0


@pytest_asyncio.fixture(loop_scope="session")
async def on_rabbit(
    db: Database, settings: Settings, amqp_url: str
) -> AsyncIterator[tuple[Runtime, Runtime]]:
    """A web process with no agents and a ``kommandant worker knowledge`` process, on one broker."""
    configured = settings.model_copy(
        update={
            "amqp_url": SecretStr(amqp_url),
            "bus_prefix": f"ktest{uuid.uuid4().hex[:8]}",
            "heartbeat_interval": 0.5,
            "call_timeout": 60.0,
            "llm_model": "",
        }
    )
    try:
        async with (
            Runtime(configured, agents=["knowledge"], database=db) as worker,
            Runtime(configured, agents=[], database=db) as web,
        ):
            yield web, worker
    finally:
        await delete_topology(amqp_url, Topology(configured.bus_prefix), ["knowledge"])


async def test_over_rabbitmq_a_knowledge_worker_ingests_the_upload(
    on_rabbit: tuple[Runtime, Runtime], db: Database, tmp_path: Path
) -> None:
    web, worker = on_rabbit
    assert web.kommandant is not None and web.services is not None and not web.workers
    assert [w.agent.name for w in worker.workers] == ["knowledge"]
    outcome = await ingest_uploads(web.kommandant, _files(tmp_path)[:1], _turn(), max_bytes=1_000)
    assert outcome.text() == "Added 1 file (notes.md) to the knowledge base as 1 passage."
    rows = await web.services.audit.tail(50)
    results = [r for r in rows if r.kind == "tool_result" and r.tool == knowledge_tools.INGEST.name]
    assert len(results) == 1 and results[0].data["ok"] and results[0].data["agent"] == "knowledge"
    assert await _staged(db) == 0
