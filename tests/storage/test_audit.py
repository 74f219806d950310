"""The audit trail on real PostgreSQL: the chain, tampering, concurrent writers, redaction, the CLI."""

from __future__ import annotations

import asyncio
import enum
import itertools
import json
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from assistant.cli.audit import app
from storage import AuditEntry, AuditIntegrityError, AuditLog, Database, redact_secrets
from storage.audit import GENESIS_HASH, REDACTED, entry_hash, to_json_value

REPO_ROOT = Path(__file__).resolve().parents[2]

# --- pure: redaction and JSON normalisation -------------------------------------------------------


def test_redact_secrets_replaces_values_under_secret_keys_at_any_depth() -> None:
    data = {
        "user": "ada",
        "Password": "hunter2",
        "nested": {"api_key": "abc", "clientSecret": "s", "X-Api-Key": "k", "list": [{"access_token": "t"}]},
        "headers": {"Authorization": "Bearer abcdefghijkl", "Cookie": "sid=1"},
        "credentials": {"user": "u", "pass": "p"},
        "token": None,
    }
    out = redact_secrets(data)
    assert out == {
        "user": "ada",
        "Password": REDACTED,
        "nested": {
            "api_key": REDACTED,
            "clientSecret": REDACTED,
            "X-Api-Key": REDACTED,
            "list": [{"access_token": REDACTED}],
        },
        "headers": {"Authorization": REDACTED, "Cookie": REDACTED},
        "credentials": REDACTED,
        "token": None,
    }
    assert data["Password"] == "hunter2"  # the input is left alone


def test_redact_secrets_leaves_harmless_keys_and_text_alone() -> None:
    data = {
        "author": "ada",
        "max_tokens": 256,
        "prompt_tokens": 12,
        "passage": "basic text",
        "kind": "bypass",
        "note": "the token expired",
        "url": "https://example.com/a?b=c",
    }
    assert redact_secrets(data) == data


@pytest.mark.parametrize(
    ("text_in", "text_out"),
    [
        ("curl -H 'Authorization: Bearer eyJhbGciOi.J9x_y-z'", "curl -H 'Authorization: Bearer [redacted]'"),
        ("sent with bearer abcdefgh12345678==", "sent with bearer [redacted]"),
        ("slack xoxb-123456789-abcdefghij done", "slack [redacted] done"),
        ("user token xoxp-1-2-3-abcdefabcdef", "user token [redacted]"),
        ("key sk-proj-abcdefghijklmnop1234 here", "key [redacted] here"),
        ("postgresql://kommandant:s3cret@db:5432/k", "postgresql://kommandant:[redacted]@db:5432/k"),
        (
            "https://example.com/cb?access_token=abc123&x=1",
            "https://example.com/cb?access_token=[redacted]&x=1",
        ),
        ('{"password": "hunter2"}', '{"password": "[redacted]"}'),
        (
            "https://hooks.slack.com/services/T000/B000/XXXXXXXX",
            "https://hooks.slack.com/services/[redacted]",
        ),
        ("ghp_" + "a" * 36, REDACTED),
        ("AKIAABCDEFGHIJKLMNOP", REDACTED),
    ],
)
def test_redact_secrets_finds_tokens_inside_text(text_in: str, text_out: str) -> None:
    assert redact_secrets({"message": text_in}) == {"message": text_out}
    assert redact_secrets([text_in, (text_in,)]) == [text_out, (text_out,)]
    assert redact_secrets(text_out) == text_out  # idempotent


class Color(enum.Enum):
    RED = "red"


def test_to_json_value_gives_what_jsonb_gives_back() -> None:
    when = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    ident = uuid.UUID(int=1)
    assert to_json_value(
        {
            1: (1, 2),
            "f": 1e20,
            "z": -0.0,
            "n": float("nan"),
            "w": when,
            "u": ident,
            "e": Color.RED,
            "s": "a\x00b",
        }
    ) == {
        "1": [1, 2],
        "f": 10**20,
        "z": 0.0,
        "n": "nan",
        "w": when.isoformat(),
        "u": str(ident),
        "e": "red",
        "s": "ab",
    }


def test_entry_hash_covers_every_field() -> None:
    base: dict[str, Any] = dict(
        seq=1,
        ts=datetime(2024, 1, 1, tzinfo=UTC),
        actor="a",
        channel="web",
        thread_id="t",
        kind="k",
        tool="x",
        data={"a": 1},
    )
    reference = entry_hash(GENESIS_HASH, **base)
    assert len(reference) == 64
    for field, other in [
        ("seq", 2),
        ("ts", datetime(2024, 1, 2, tzinfo=UTC)),
        ("actor", "b"),
        ("channel", None),
        ("thread_id", None),
        ("kind", "j"),
        ("tool", None),
        ("data", {"a": 2}),
    ]:
        assert entry_hash(GENESIS_HASH, **{**base, field: other}) != reference, field
    assert entry_hash("1" * 64, **base) != reference


# --- the chain on PostgreSQL ----------------------------------------------------------------------


async def _fill(log: AuditLog, n: int) -> list[AuditEntry]:
    return [
        await log.append(
            "tool_call",
            actor=f"user{i % 3}",
            channel="web",
            thread_id="t1",
            tool="memory_remember",
            data={"i": i, "text": f"entry {i}"},
        )
        for i in range(1, n + 1)
    ]


async def _sql(db: Database, statement: str, **params: Any) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(text(statement), params)


async def _row(db: Database, seq: int) -> dict[str, Any]:
    async with db.engine.connect() as conn:
        row = (
            (await conn.execute(text("SELECT * FROM audit_log WHERE seq = :s"), {"s": seq})).mappings().one()
        )
    return dict(row)


async def test_append_links_each_row_to_its_predecessor(db: Database) -> None:
    log = AuditLog(db.sessionmaker)
    entries = await _fill(log, 5)
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(entries):
        assert after.prev_hash == before.hash
    assert entries[0].ts.tzinfo is not None
    report = await log.verify()
    assert report.ok and report.rows_checked == 5 and report.problem is None
    assert report.head_hash == entries[-1].hash


async def test_an_empty_trail_verifies(db: Database) -> None:
    report = await AuditLog(db.sessionmaker).verify()
    assert report.ok and report.rows_checked == 0


async def test_odd_values_survive_the_round_trip_and_verify(db: Database) -> None:
    log = AuditLog(db.sessionmaker)
    entry = await log.append(
        "odd",
        actor="ada\x00",
        data={
            "big": 1e20,
            "huge": 1.2345e300,
            "tiny": 1e-7,
            "neg0": -0.0,
            "nan": float("inf"),
            "when": datetime.now(UTC),
            "id": uuid.uuid4(),
            "tuple": (1, 2.5),
            "nested": {"k": [1.5, None, True]},
            "unicode": "Grüße 👋 \u2028",
            "nul": "a\x00b",
            "int": 10**40,
        },
    )
    assert entry.actor == "ada"
    (stored,) = await log.tail(1)
    assert stored == entry
    assert (await log.verify()).ok


async def test_tail_returns_newest_last_and_filters_by_kind(db: Database) -> None:
    log = AuditLog(db.sessionmaker)
    for i in range(6):
        await log.append("intent" if i % 2 else "tool_call", actor="ada", data={"i": i})
    assert [e.data["i"] for e in await log.tail(3)] == [3, 4, 5]
    assert [e.data["i"] for e in await log.tail(10, kind="intent")] == [1, 3, 5]
    assert await log.tail(0) == []
    assert await log.tail(5, kind="nothing") == []


async def test_secrets_never_reach_the_stored_row(db: Database) -> None:
    log = AuditLog(db.sessionmaker)
    entry = await log.append(
        "tool_call",
        actor="ada",
        tool="notion_search",
        data={
            "password": "hunter2",
            "args": {"url": "https://u:hunter3@example.com", "note": "xoxb-1234-abcdefghij"},
        },
    )
    assert entry.data == {
        "password": REDACTED,
        "args": {"url": "https://u:[redacted]@example.com", "note": REDACTED},
    }
    async with db.engine.connect() as conn:
        raw = await conn.scalar(text("SELECT row_to_json(a)::text FROM audit_log a"))
    assert "hunter2" not in raw and "hunter3" not in raw and "xoxb-1234" not in raw
    assert (await log.verify()).ok


async def test_a_failed_append_leaves_no_gap(db: Database) -> None:
    log = AuditLog(db.sessionmaker)
    await _fill(log, 2)
    with pytest.raises(Exception, match="Could not append"):
        await log.append("k" * 51, actor="ada")  # kind is at most 50 characters
    third = await log.append("ok", actor="ada")
    assert third.seq == 3
    assert (await log.verify()).ok


# --- tampering: verify names the first bad row ----------------------------------------------------


async def test_modified_content_is_found_at_that_row(db: Database) -> None:
    log = AuditLog(db.sessionmaker)
    await _fill(log, 10)
    await _sql(db, """UPDATE audit_log SET data = '{"i": 99}' WHERE seq = 7""")
    report = await log.verify(batch=3)
    assert not report.ok and report.first_bad_seq == 7 and report.rows_checked == 6
    assert report.problem == "row 7: content does not match its hash (modified)."


@pytest.mark.parametrize("column", ["actor", "kind", "ts"])
async def test_modified_columns_are_found(db: Database, column: str) -> None:
    log = AuditLog(db.sessionmaker)
    await _fill(log, 5)
    value = "now() - interval '1 day'" if column == "ts" else "'mallory'"
    await _sql(db, f"UPDATE audit_log SET {column} = {value} WHERE seq = 2")
    report = await log.verify()
    assert report.first_bad_seq == 2 and "modified" in (report.problem or "")


async def test_modified_hash_is_found_at_that_row(db: Database) -> None:
    log = AuditLog(db.sessionmaker)
    await _fill(log, 10)
    await _sql(db, "UPDATE audit_log SET hash = :h WHERE seq = 4", h="f" * 64)
    report = await log.verify()
    assert not report.ok and report.first_bad_seq == 4
    assert report.problem == "row 4: content does not match its hash (modified)."


async def test_a_rewritten_row_with_a_recomputed_hash_breaks_the_next_link(db: Database) -> None:
    log = AuditLog(db.sessionmaker)
    await _fill(log, 10)
    row = await _row(db, 4)
    forged = entry_hash(
        row["prev_hash"],
        **{k: row[k] for k in ("seq", "ts", "actor", "channel", "thread_id", "kind", "tool")},
        data={"i": 0},
    )
    await _sql(db, """UPDATE audit_log SET data = '{"i": 0}', hash = :h WHERE seq = 4""", h=forged)
    report = await log.verify()
    assert report.first_bad_seq == 5
    assert report.problem == (
        "row 5: previous-hash link is broken (row 4 was rewritten, or a row before it "
        "was deleted or reordered)."
    )


async def test_a_rewritten_newest_row_is_caught_by_the_head(db: Database) -> None:
    log = AuditLog(db.sessionmaker)
    await _fill(log, 3)
    row = await _row(db, 3)
    forged = entry_hash(
        row["prev_hash"],
        **{k: row[k] for k in ("seq", "ts", "actor", "channel", "thread_id", "kind", "tool")},
        data={},
    )
    await _sql(db, "UPDATE audit_log SET data = '{}', hash = :h WHERE seq = 3", h=forged)
    report = await log.verify()
    assert report.first_bad_seq == 3 and "head's hash does not match" in (report.problem or "")


@pytest.mark.parametrize(("first", "second"), [(3, 4), (3, 8), (1, 10)])
async def test_swapped_rows_are_found_at_the_first_of_them(db: Database, first: int, second: int) -> None:
    """An attacker swaps two whole rows (every column but seq, the position): each row's hash is genuine."""
    log = AuditLog(db.sessionmaker)
    await _fill(log, 10)
    a, b = await _row(db, first), await _row(db, second)
    await _sql(db, "DELETE FROM audit_log WHERE seq IN (:a, :b)", a=first, b=second)
    insert = (
        "INSERT INTO audit_log (seq, ts, actor, channel, thread_id, kind, tool, data, prev_hash, hash) "
        "VALUES (:seq, :ts, :actor, :channel, :thread_id, :kind, :tool, CAST(:data AS jsonb), "
        ":prev_hash, :hash)"
    )
    for row, seq in ((a, second), (b, first)):
        await _sql(db, insert, **{**row, "seq": seq, "data": json.dumps(row["data"])})
    report = await log.verify(batch=4)
    assert not report.ok and report.first_bad_seq == first
    assert report.problem is not None and report.problem.startswith(
        f"row {first}: previous-hash link is broken"
    )


async def test_a_deleted_middle_row_is_named(db: Database) -> None:
    log = AuditLog(db.sessionmaker)
    await _fill(log, 10)
    await _sql(db, "DELETE FROM audit_log WHERE seq = 5")
    report = await log.verify(batch=2)
    assert not report.ok and report.first_bad_seq == 5 and report.rows_checked == 4
    assert report.problem == "sequence gap: row 5 is missing (row 4 is followed by row 6): rows were deleted."


async def test_a_deleted_middle_row_with_renumbering_is_named(db: Database) -> None:
    log = AuditLog(db.sessionmaker)
    await _fill(log, 10)
    await _sql(db, "DELETE FROM audit_log WHERE seq = 5")
    await _sql(db, "UPDATE audit_log SET seq = seq - 1 WHERE seq > 5")
    await _sql(db, "UPDATE audit_head SET seq = seq - 1")
    report = await log.verify()
    assert report.first_bad_seq == 5 and "link is broken" in (report.problem or "")


async def test_deleted_first_rows_are_named(db: Database) -> None:
    log = AuditLog(db.sessionmaker)
    await _fill(log, 5)
    await _sql(db, "DELETE FROM audit_log WHERE seq <= 2")
    report = await log.verify()
    assert report.first_bad_seq == 1
    assert report.problem == "sequence gap: rows 1-2 are missing (the first row is 3): rows were deleted."


async def test_deleted_tail_rows_are_caught_by_the_head(db: Database) -> None:
    log = AuditLog(db.sessionmaker)
    await _fill(log, 10)
    await _sql(db, "DELETE FROM audit_log WHERE seq > 7")
    report = await log.verify()
    assert not report.ok and report.first_bad_seq == 8 and report.rows_checked == 7
    assert report.problem == "the newest row is 7 but the head says 10: rows were deleted from the end."
    # appending afterwards continues from the head, so the evidence stays in the chain
    await log.append("later", actor="ada")
    assert (await log.verify()).first_bad_seq == 8


async def test_every_row_deleted_is_caught_by_the_head(db: Database) -> None:
    log = AuditLog(db.sessionmaker)
    await _fill(log, 3)
    await _sql(db, "DELETE FROM audit_log")
    report = await log.verify()
    assert report.first_bad_seq == 1
    assert report.problem == "the log is empty but the head says 3: rows were deleted from the end."


@pytest.mark.parametrize(
    ("statement", "bad_seq", "words"),
    [
        ("UPDATE audit_head SET hash = repeat('a', 64)", 5, "head's hash does not match"),
        ("UPDATE audit_head SET seq = 3", 4, "the head says 3 but the log goes up to row 5"),
        ("UPDATE audit_head SET seq = 9", 6, "the newest row is 5 but the head says 9"),
    ],
)
async def test_a_forged_head_is_found(db: Database, statement: str, bad_seq: int, words: str) -> None:
    log = AuditLog(db.sessionmaker)
    await _fill(log, 5)
    await _sql(db, statement)
    report = await log.verify()
    assert not report.ok and report.first_bad_seq == bad_seq and words in (report.problem or "")


async def test_a_deleted_head_is_found_and_blocks_appends(db: Database) -> None:
    log = AuditLog(db.sessionmaker)
    await _fill(log, 3)
    await _sql(db, "DELETE FROM audit_head")
    report = await log.verify()
    assert not report.ok and "head is missing" in (report.problem or "")
    with pytest.raises(AuditIntegrityError, match="head row is missing"):
        await log.append("after", actor="mallory")


# --- concurrent writers ---------------------------------------------------------------------------


async def _assert_unbroken(db: Database, rows: int) -> None:
    async with db.engine.connect() as conn:
        seqs = (await conn.execute(text("SELECT seq FROM audit_log ORDER BY seq"))).scalars().all()
    assert seqs == list(range(1, rows + 1))
    report = await AuditLog(db.sessionmaker).verify(batch=37)
    assert report.ok and report.rows_checked == rows, report.problem


async def test_a_hundred_concurrent_appends_leave_one_chain(db: Database) -> None:
    log = AuditLog(db.sessionmaker)
    entries = await asyncio.gather(
        *(log.append("tool_call", actor=f"w{i}", data={"i": i}) for i in range(100))
    )
    assert sorted(e.seq for e in entries) == list(range(1, 101))
    assert sorted(e.data["i"] for e in entries) == list(range(100))
    await _assert_unbroken(db, 100)


async def test_verify_during_appends_sees_a_consistent_snapshot(db: Database) -> None:
    log = AuditLog(db.sessionmaker)
    await _fill(log, 20)
    results = await asyncio.gather(
        *(log.append("tool_call", actor="w", data={"i": i}) for i in range(60)),
        *(log.verify(batch=7) for _ in range(5)),
    )
    reports = results[60:]
    assert all(r.ok for r in reports), [r.problem for r in reports]
    await _assert_unbroken(db, 80)


async def test_separate_engines_append_concurrently(db: Database) -> None:
    databases = [Database(db.url, migrate=False, pool_size=3) for _ in range(3)]
    for other in databases:
        await other.start()
    try:
        logs = [AuditLog(other.sessionmaker) for other in databases]
        await asyncio.gather(
            *(logs[i % 3].append("k", actor=f"engine{i % 3}", data={"i": i}) for i in range(90))
        )
    finally:
        for other in databases:
            await other.close()
    await _assert_unbroken(db, 90)


WRITER = """
import asyncio, sys
from storage import AuditLog, Database

async def main(url: str, name: str, n: int) -> None:
    async with Database(url, migrate=False, pool_size=4) as db:
        log = AuditLog(db.sessionmaker)
        print("ready", flush=True)
        sys.stdin.readline()
        await asyncio.gather(*(log.append("k", actor=name, data={"i": i}) for i in range(n)))

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


@pytest.mark.slow
async def test_separate_processes_append_concurrently(db: Database) -> None:
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            WRITER,
            db.url,
            f"proc{i}",
            "50",
            cwd=REPO_ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for i in range(4)
    ]
    try:
        for proc in procs:  # every writer connected, then all start at once
            assert proc.stdout is not None
            assert await asyncio.wait_for(proc.stdout.readline(), 60) == b"ready\n"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
        for proc in procs:
            _, err = await asyncio.wait_for(proc.communicate(), 60)
            assert proc.returncode == 0, err.decode()
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
    await _assert_unbroken(db, 200)
    async with db.engine.connect() as conn:
        actors = (await conn.execute(text("SELECT actor, count(*) FROM audit_log GROUP BY actor"))).all()
    assert sorted(actors) == [(f"proc{i}", 50) for i in range(4)]


# --- the CLI --------------------------------------------------------------------------------------


@pytest.fixture
def cli_env(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("KOMMANDANT_DATABASE_URL", db.url)
    monkeypatch.setenv("KOMMANDANT_DATA_DIR", str(tmp_path / "data"))
    return CliRunner()


async def _invoke(runner: CliRunner, *args: str) -> Any:
    # The command runs its own event loop, so it gets a thread of its own.
    return await asyncio.to_thread(runner.invoke, app, list(args))


async def test_cli_verify_passes_then_names_the_tampered_row(db: Database, cli_env: CliRunner) -> None:
    await _fill(AuditLog(db.sessionmaker), 6)
    result = await _invoke(cli_env, "verify")
    assert result.exit_code == 0, result.output
    assert "Audit trail intact: 6 rows verified." in result.output

    await _sql(db, """UPDATE audit_log SET data = '{"i": 0}' WHERE seq = 4""")
    result = await _invoke(cli_env, "verify")
    assert result.exit_code == 1
    assert "row 4: content does not match its hash (modified)." in result.output


async def test_cli_verify_on_an_empty_trail(cli_env: CliRunner) -> None:
    result = await _invoke(cli_env, "verify")
    assert result.exit_code == 0 and "Audit trail intact: 0 rows verified." in result.output


async def test_cli_tail_as_table_and_json(db: Database, cli_env: CliRunner) -> None:
    log = AuditLog(db.sessionmaker)
    for i in range(5):
        await log.append("intent" if i % 2 else "tool_call", actor="ada", channel="cli", data={"i": i})
    result = await _invoke(cli_env, "tail", "--limit", "3")
    assert result.exit_code == 0, result.output
    assert "tool_call" in result.output and "intent" in result.output and "ada" in result.output

    result = await _invoke(cli_env, "tail", "--kind", "intent", "--json")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [(line["seq"], line["kind"], line["data"]) for line in lines] == [
        (2, "intent", {"i": 1}),
        (4, "intent", {"i": 3}),
    ]
    result = await _invoke(cli_env, "tail", "--kind", "nothing")
    assert result.exit_code == 0 and "no rows of kind 'nothing'" in result.output


@pytest.mark.parametrize("url", ["postgresql://kommandant:s3cret@127.0.0.1:1/nowhere", "not a url"])
async def test_cli_with_a_bad_database_url_is_one_sentence(
    cli_env: CliRunner, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("KOMMANDANT_DATABASE_URL", url)
    result = await _invoke(cli_env, "verify")
    assert result.exit_code == 2
    output = " ".join(result.output.split())
    assert output.startswith("Error: ") and "database" in output.lower()
    assert "Traceback" not in output and "s3cret" not in output
