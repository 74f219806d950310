"""Audit rows carry their owner: a person reads only their own rows, the owner is covered by the hash, and
rows written before owners existed (revision 0005) still verify and stay their actor's."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from storage import AuditLog, Database
from storage.audit import GENESIS_HASH, entry_hash
from storage.migrate import upgrade

BASE: dict[str, Any] = dict(
    seq=1,
    ts=datetime(2024, 1, 1, tzinfo=UTC),
    actor="ada",
    channel="web",
    thread_id=None,
    kind="turn",
    tool=None,
    data={"chars": 3},
)


def test_the_hash_covers_an_owner_other_than_the_actor() -> None:
    reference = entry_hash(GENESIS_HASH, **BASE)
    assert entry_hash(GENESIS_HASH, **BASE, owner=None) == reference
    assert entry_hash(GENESIS_HASH, **BASE, owner="ada") == reference  # the actor's own row: as before
    assert entry_hash(GENESIS_HASH, **BASE, owner="bob") != reference
    assert entry_hash(GENESIS_HASH, **{**BASE, "actor": "reminders"}, owner="ada") != entry_hash(
        GENESIS_HASH, **{**BASE, "actor": "reminders"}, owner="bob"
    )


async def _sql(db: Database, statement: str, **params: Any) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(text(statement), params)


async def test_tail_for_an_owner_shows_only_their_rows(db: Database) -> None:
    log = AuditLog(db.sessionmaker)
    await log.append("turn", actor="ada", data={"text": "hello"})
    await log.append("turn", actor="bob", data={"text": "hi"})
    await log.append("reminder_fired", actor="reminders", owner="ada", data={})
    await log.append("approval_decided", actor="root", data={})
    assert [(e.actor, e.owner) for e in await log.tail(10, owner="ada")] == [
        ("ada", "ada"),
        ("reminders", "ada"),
    ]
    assert [e.actor for e in await log.tail(10, owner="bob")] == ["bob"]
    assert [e.actor for e in await log.tail(10, owner="reminders")] == []
    assert len(await log.tail(10)) == 4
    assert (await log.verify()).ok


async def test_moving_a_row_to_another_owner_breaks_its_hash(db: Database) -> None:
    log = AuditLog(db.sessionmaker)
    await log.append("turn", actor="ada", data={})
    await log.append("reminder_fired", actor="reminders", owner="ada", data={})
    await log.append("turn", actor="bob", data={})
    await _sql(db, "UPDATE audit_log SET owner = 'bob' WHERE seq = 1")
    report = await log.verify()
    assert report.first_bad_seq == 1 and "modified" in (report.problem or "")
    await _sql(db, "UPDATE audit_log SET owner = 'ada' WHERE seq = 1")
    assert (await log.verify()).ok
    await _sql(db, "UPDATE audit_log SET owner = NULL WHERE seq = 2")  # would make it the agent's
    report = await log.verify()
    assert report.first_bad_seq == 2 and "modified" in (report.problem or "")


async def test_rows_from_before_owners_verify_and_stay_their_actors(make_database_url: Any) -> None:
    url = await make_database_url()
    async with Database(url, migrate=False) as db:
        await upgrade(db.engine, "0005")
        prev = GENESIS_HASH
        for seq, actor in enumerate(["ada", "bob", "ada"], start=1):
            fields = {**BASE, "seq": seq, "actor": actor}
            digest = entry_hash(prev, **fields)
            await _sql(
                db,
                "INSERT INTO audit_log (seq, ts, actor, channel, thread_id, kind, tool, data, prev_hash, "
                "hash) VALUES (:seq, :ts, :actor, :channel, :thread_id, :kind, :tool, CAST(:data AS jsonb), "
                ":prev_hash, :hash)",
                **{**fields, "data": '{"chars": 3}', "prev_hash": prev, "hash": digest},
            )
            prev = digest
        await _sql(db, "INSERT INTO audit_head (id, seq, hash) VALUES (1, 3, :h)", h=prev)
        await upgrade(db.engine)
        log = AuditLog(db.sessionmaker)
        assert (await log.verify()).ok
        assert [e.seq for e in await log.tail(10, owner="ada")] == [1, 3]
        await log.append("reminder_fired", actor="reminders", owner="bob", data={})
        assert [e.seq for e in await log.tail(10, owner="bob")] == [2, 4]
        report = await log.verify()
        assert report.ok and report.rows_checked == 4
