"""The command line as a person uses it: real subprocesses, real database, clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from storage import Database
from storage.models import Bot

KOMMANDANT = [sys.executable, "-m", "assistant.cli"]


def cli(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("KOMMANDANT_")}
    full_env.update(env or {})
    return subprocess.run(
        [*KOMMANDANT, *args],
        capture_output=True,
        text=True,
        env=full_env,
        input=stdin,
        timeout=timeout,
        cwd=Path(__file__).resolve().parents[1],
    )


@pytest.fixture
def db_env(db: Database, tmp_path: Path) -> dict[str, str]:
    return {"KOMMANDANT_DATABASE_URL": db.url, "KOMMANDANT_DATA_DIR": str(tmp_path)}


def test_help_lists_the_commands() -> None:
    result = cli("--help")
    assert result.returncode == 0
    for command in ("up", "ask", "parse", "chat", "worker", "db", "audit", "bus", "doctor"):
        assert command in result.stdout


def test_parse_json_prints_the_match() -> None:
    result = cli("parse", "stop the crawler bot", "--json", "--offline")
    assert result.returncode == 0, result.stderr
    # --offline knows no live names, so an unlisted bot parses on the word "bot" alone, at 0.9
    assert json.loads(result.stdout) == [
        {"tool": "bots_stop", "arguments": {"name": "crawler"}, "confidence": 0.9, "source": "template"}
    ]


def test_parse_reads_one_utterance_per_line_in_one_process() -> None:
    utterances = "what is my editor\nflibbertigibbet\nshow pending approvals\n"
    result = cli("parse", "-", "--json", "--offline", stdin=utterances)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [[m["tool"] for m in line] for line in lines] == [["memory_recall"], [], ["approvals_list"]]


async def test_parse_answers_what_a_turn_would_with_live_names(db: Database, db_env: dict[str, str]) -> None:
    """A bot's bare name is a command only once the bot exists: parse reads the live names like a turn."""
    before = cli("parse", "restart the archiver", "--json", env=db_env)
    assert before.returncode == 0, before.stderr
    assert json.loads(before.stdout) == []
    async with db.sessionmaker() as session, session.begin():
        session.add(Bot(name="archiver", command=["sleep", "1"]))
    after = json.loads(cli("parse", "restart the archiver", "--json", env=db_env).stdout)
    assert [(m["tool"], m["arguments"]) for m in after] == [("bots_restart", {"name": "archiver"})]
    offline = json.loads(cli("parse", "restart the archiver", "--json", "--offline", env=db_env).stdout)
    assert offline == []


def test_parse_heard_corrects_a_misheard_command(db: Database, db_env: dict[str, str]) -> None:
    """--heard reads the text as a transcript: the spoken-path correction applies, typed text stays as is."""
    typed = json.loads(cli("parse", "show ending approvals", "--json", env=db_env).stdout)
    heard = json.loads(cli("parse", "show ending approvals", "--json", "--heard", env=db_env).stdout)
    assert typed == []
    assert [(m["tool"], m["source"]) for m in heard] == [("approvals_list", "corrected")]


def test_ask_json_runs_a_turn(db_env: dict[str, str]) -> None:
    first = cli("ask", "remember that my editor is neovim", "--json", env=db_env)
    assert first.returncode == 0, first.stderr
    second = json.loads(cli("ask", "what is my editor", "--json", env=db_env).stdout)
    assert [i["tool"] for i in second["intents"]] == ["memory_recall"]
    assert second["tools"][0]["ok"] and "neovim" in second["reply"]


def test_audit_verify_after_turns(db_env: dict[str, str]) -> None:
    cli("ask", "what's the status", env=db_env)
    result = cli("audit", "verify", env=db_env)
    assert result.returncode == 0 and "intact" in result.stdout


def test_unreachable_database_is_one_sentence_and_nonzero(tmp_path: Path) -> None:
    env = {
        "KOMMANDANT_DATABASE_URL": "postgresql://me:hunter2@127.0.0.1:1/x",
        "KOMMANDANT_DATA_DIR": str(tmp_path),
    }
    for args in (("db", "upgrade"), ("ask", "what is my editor")):
        result = cli(*args, env=env)
        assert result.returncode == 2
        assert "Cannot reach the database" in result.stderr
        assert "Traceback" not in result.stderr + result.stdout and "hunter2" not in result.stderr


def test_worker_needs_a_broker(tmp_path: Path) -> None:
    result = cli("worker", "memory", env={"KOMMANDANT_DATA_DIR": str(tmp_path)})
    assert result.returncode == 2 and "KOMMANDANT_AMQP_URL" in result.stderr


def test_doctor_reports_each_part(db_env: dict[str, str]) -> None:
    result = cli("doctor", env={**db_env, "KOMMANDANT_LLM_MODEL": ""})
    assert result.returncode == 0, result.stdout + result.stderr
    for part in ("database", "pgvector", "schema", "broker", "llm"):
        assert part in result.stdout
