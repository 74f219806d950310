"""`kommandant ingest` reads what is inside the folder it was given: links out of it are skipped."""

from __future__ import annotations

from pathlib import Path

from agents.ingest import folder_files


def _folder(tmp_path: Path) -> Path:
    """docs/ with a note, a link to a file outside, a linked folder outside, a link inside, a loop."""
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (outside / "deep" / "private.md").write_text("# Private\n\nNot for the shared knowledge base.")
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.md").write_text("# Alpha\n\nThe alpha server restarts on Sundays.")
    (docs / "sub" / "notes.txt").symlink_to(outside / "passwd")
    (docs / "linked").symlink_to(outside, target_is_directory=True)
    (docs / "again.md").symlink_to(docs / "a.md")
    (docs / "sub" / "loop").symlink_to(docs, target_is_directory=True)
    return docs


def test_links_out_of_the_folder_are_skipped_and_said(tmp_path: Path) -> None:
    files, skipped = folder_files(_folder(tmp_path))
    assert [name for name, _ in files] == ["docs/a.md", "docs/again.md"]
    assert {s.name: s.leads_out for s in skipped} == {"docs/linked": True, "docs/sub/notes.txt": True}
    notes = next(s for s in skipped if s.name == "docs/sub/notes.txt")
    assert str(tmp_path / "outside" / "passwd") in notes.reason and "outside" in notes.reason


def test_follow_symlinks_reads_them_and_a_loop_ends(tmp_path: Path) -> None:
    files, skipped = folder_files(_folder(tmp_path), follow_symlinks=True)
    names = [name for name, _ in files]
    assert names == ["docs/a.md", "docs/again.md", "docs/linked/deep/private.md", "docs/sub/notes.txt"]
    assert skipped == []
