"""An embedded database that cannot start stops every command with one sentence naming the cause and what
to do, a non-zero exit and no traceback: a data folder that cannot be created, and a data folder left by
another PostgreSQL version (PostgreSQL itself refuses it), and a damaged one."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_cli import cli

SERVERS = [("up", "--port", "18771"), ("mcp", "--http", "--port", "18772"), ("ask", "what's the status")]


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data folder outside pytest's private temp folders (as root, PostgreSQL runs as 'pgserver')."""
    path = Path(tempfile.mkdtemp(prefix="kommandant-test-embedded-"))
    yield path / "data"
    shutil.rmtree(path, ignore_errors=True)


def error_of(args: tuple[str, ...], data_dir: Path) -> str:
    result = cli(*args, env={"KOMMANDANT_DATA_DIR": str(data_dir), "KOMMANDANT_LLM_MODEL": ""}, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output and "CalledProcessError" not in output and "pg_ctl" not in output
    [error] = [part for part in result.stderr.split("Error: ")[1:]]
    assert "\n\n" not in error.strip() and len(error.strip().splitlines()) <= 8, result.stderr
    said = " ".join(error.split())
    assert said.endswith("."), said
    return said


@pytest.mark.parametrize("args", SERVERS, ids=lambda a: a[0])
def test_a_data_folder_that_cannot_be_made(data_dir: Path, args: tuple[str, ...]) -> None:
    data_dir.parent.joinpath("data").write_text("a file where the data folder should be")
    said = error_of(args, data_dir)
    assert f"cannot use the folder {data_dir / 'pgdata'} (Not a directory)" in said
    assert "set KOMMANDANT_DATA_DIR to a folder you can write to" in said


@pytest.mark.parametrize("args", SERVERS, ids=lambda a: a[0])
def test_a_data_folder_of_another_postgresql_version(data_dir: Path, args: tuple[str, ...]) -> None:
    pgdata = data_dir / "pgdata"
    pgdata.mkdir(parents=True, mode=0o700)
    (pgdata / "PG_VERSION").write_text("99\n")
    (pgdata / "postgresql.conf").write_text("")
    said = error_of(args, data_dir)
    assert f"The embedded PostgreSQL in {pgdata} did not start" in said
    assert "initialized by PostgreSQL version 99" in said  # PostgreSQL's own words, from its log
    assert "move it aside (it holds the data)" in said and "KOMMANDANT_DATABASE_URL" in said


def test_a_damaged_data_folder_names_what_postgresql_missed(data_dir: Path) -> None:
    pgdata = data_dir / "pgdata"
    pgdata.mkdir(parents=True, mode=0o700)
    (pgdata / "PG_VERSION").write_text("16\n")  # a cluster whose files are gone but for this one
    said = error_of(("ask", "what's the status"), data_dir)
    assert f'could not access the server configuration file "{pgdata / "postgresql.conf"}"' in said
    assert f"see {pgdata / 'log'}, repair or move the folder aside" in said
