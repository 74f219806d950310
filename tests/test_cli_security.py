"""Security findings at the command line: servers fail in one sentence, ingest stays in its folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage import Database
from tests.test_cli import cli


@pytest.mark.parametrize("args", [("up", "--port", "18761"), ("mcp", "--http", "--port", "18762")])
def test_a_server_with_an_unreachable_database_says_so_in_one_sentence(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    env = {
        "KOMMANDANT_DATABASE_URL": "postgresql://me:hunter2@127.0.0.1:1/x?password=hunter3",
        "KOMMANDANT_DATA_DIR": str(tmp_path),
    }
    result = cli(*args, env=env, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Cannot reach the database" in " ".join(result.stderr.split())
    assert len(result.stderr.strip().splitlines()) <= 4, result.stderr
    assert "Traceback" not in output and "hunter2" not in output and "hunter3" not in output
    assert "me:***@127.0.0.1:1/x?password=***" in result.stderr


def test_ingest_skips_a_link_out_of_the_folder_and_says_why(db: Database, tmp_path: Path) -> None:
    env = {"KOMMANDANT_DATABASE_URL": db.url, "KOMMANDANT_DATA_DIR": str(tmp_path / "data")}
    secret = tmp_path / "outside" / "passwd"
    secret.parent.mkdir()
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Alpha\n\nThe alpha server restarts every Sunday at 04:00.")
    (docs / "notes.txt").symlink_to(secret)
    result = cli("ingest", str(docs), env=env, timeout=300)
    said = " ".join(result.stdout.split())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "docs/a.md: 1 passage" in said
    assert f"docs/notes.txt: skipped, a link to {secret}, outside {docs}" in said
    assert "--follow-symlinks" in said and "notes.txt: 1 passage" not in said
