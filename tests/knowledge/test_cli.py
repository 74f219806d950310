"""`kommandant ingest` and `kommandant reembed` as a person runs them (real subprocesses, real model)."""

from __future__ import annotations

from pathlib import Path

from storage import Database
from tests.test_cli import cli


def test_ingest_folder_then_reembed(db: Database, tmp_path: Path) -> None:
    env = {"KOMMANDANT_DATABASE_URL": db.url, "KOMMANDANT_DATA_DIR": str(tmp_path / "data")}
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.md").write_text("# Alpha\n\nThe alpha server restarts every Sunday at 04:00.")
    (docs / "sub" / "b.txt").write_text("Beta keys are in the grey cabinet.")
    (docs / "sub" / "c.pdf").write_bytes(b"%PDF-1.4 broken")
    (docs / "ignored.bin").write_bytes(b"\x00\x01")
    result = cli("ingest", str(docs), env=env, timeout=300)
    assert result.returncode == 1, result.stderr  # one file failed; the others are stored
    assert "docs/a.md: 1 passage" in result.stdout and "docs/sub/b.txt: 1 passage" in result.stdout
    assert "c.pdf: the PDF is damaged" in result.stdout and "ignored.bin" not in result.stdout
    again = cli("ingest", str(docs / "a.md"), env=env, timeout=300)
    assert "already in the knowledge base" in again.stdout
    result = cli("reembed", env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Re-embedded 2 passages" in result.stdout
    missing = cli("ingest", str(tmp_path / "nope.md"), env=env)
    # the console wraps long lines at its width: compare the words, not the line breaks
    assert missing.returncode == 2 and "does not exist" in " ".join(missing.stderr.split())
