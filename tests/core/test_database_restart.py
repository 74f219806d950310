"""A database restart drops every connection: turns go on working, and nothing is half-recorded."""

from __future__ import annotations

from sqlalchemy import text

from assistant.events import ReplyDone, ToolFinished, Turn
from assistant.runtime import Runtime
from storage.audit import AuditLog


async def test_turns_survive_all_connections_being_dropped(runtime: Runtime) -> None:
    assert runtime.kommandant is not None and runtime.services is not None
    database = runtime.services.database
    await _turn(runtime, "remember that my editor is neovim")

    # What a restart does to us: every server process serving our pool goes away.
    async with database.engine.connect() as conn:
        await conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
        await conn.commit()

    events = await _turn(runtime, "what is my editor")
    done = next(e for e in events if isinstance(e, ReplyDone))
    assert "neovim" in done.text, done.text
    assert any(isinstance(e, ToolFinished) and e.ok for e in events)
    report = await AuditLog(database.sessionmaker).verify()
    assert report.ok, report.problem


async def _turn(runtime: Runtime, text_: str) -> list[object]:
    assert runtime.kommandant is not None
    return [
        e
        async for e in runtime.kommandant.handle(Turn(text=text_, user="local", channel="cli", role="admin"))
    ]
