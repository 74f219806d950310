"""Ingestion of every supported file type, limits and failures, supersession, hashed queries in audit."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import docx

from agents.documents import chunk_document, read_document, text_document
from agents.ingest import ingest_files
from agents.knowledge import KnowledgeBase
from assistant.events import ToolFinished
from assistant.runtime import Runtime
from embeddings import Embedder
from storage.memory import MemoryRepository
from tests.knowledge.conftest import turn_reply
from tools import private_digest

MakeRuntime = Callable[..., AbstractAsyncContextManager[Runtime]]


def _pdf(path: Path, pages: list[str]) -> None:
    """A real, minimal PDF with one text line per page (Helvetica), cross-reference table included."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", ""]
    kids = []
    for text in pages:
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        content_id = len(objects) + 2
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream.decode()}\nendstream")
        page_id = len(objects) + 1
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content_id - 1} 0 R "
            "/Resources << /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >> >>"
        )
        kids.append(f"{page_id} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>"
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    path.write_bytes(bytes(out))


def _files(folder: Path) -> dict[str, Path]:
    files = {
        "notes.txt": "The boiler service is due in March.\n\nCall Meyer Heating on 0711 555 2020.",
        "guide.md": "# Garden\n\n## Watering\n\nWater the tomatoes every evening in July.\n\n"
        "## Pruning\n\nPrune the apple tree in February.",
        "page.html": "<html><head><title>Bike care</title><script>evil()</script></head><body>"
        "<h1>Chains</h1><p>Oil the chain every 300 km.</p><h2>Tyres</h2><p>Pump tyres to 4 bar.</p>"
        "</body></html>",
    }
    paths = {}
    for name, body in files.items():
        paths[name] = folder / name
        paths[name].write_text(body)
    document = docx.Document()
    document.add_heading("Travel policy", level=1)
    document.add_paragraph("Book trains for trips under 600 km instead of flights.")
    paths["policy.docx"] = folder / "policy.docx"
    document.save(str(paths["policy.docx"]))
    paths["manual.pdf"] = folder / "manual.pdf"
    _pdf(paths["manual.pdf"], ["Press the red button to reset the router.", "The warranty lasts two years."])
    return paths


def test_structure_is_kept_per_type(tmp_path: Path) -> None:
    paths = _files(tmp_path)
    md = chunk_document(read_document(paths["guide.md"]))
    assert [(c.section, c.text) for c in md] == [
        ("Watering", "Water the tomatoes every evening in July."),
        ("Pruning", "Prune the apple tree in February."),
    ]
    html = read_document(paths["page.html"])
    assert html.title == "Bike care"
    assert [(b.section, b.text) for b in html.blocks] == [
        ("Chains", "Oil the chain every 300 km."),
        ("Tyres", "Pump tyres to 4 bar."),
    ]
    pdf = chunk_document(read_document(paths["manual.pdf"]))
    assert [(c.page, c.text) for c in pdf] == [
        (1, "Press the red button to reset the router."),
        (2, "The warranty lasts two years."),
    ]
    word = chunk_document(read_document(paths["policy.docx"]))
    assert word[0].section == "Travel policy" and "trains" in word[0].text


def test_long_text_chunks_overlap_and_stay_bounded() -> None:
    sentences = [f"Sentence number {i} talks about topic {i % 7} in some detail." for i in range(200)]
    chunks = chunk_document(text_document(" ".join(sentences), "long"), max_chars=400, overlap=100)
    assert len(chunks) > 10
    assert all(len(c.text) <= 400 for c in chunks)
    for before, after in itertools.pairwise(chunks):
        assert after.text.split(". ")[0].rstrip(".") in before.text  # the next one starts with the tail
    assert all(s.rstrip(".") in " ".join(c.text for c in chunks) for s in sentences)


async def test_ingest_each_type_and_fail_alone(make_runtime: MakeRuntime, tmp_path: Path) -> None:
    paths = _files(tmp_path)
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\nthis is not really a pdf at all")
    fake_docx = tmp_path / "fake.docx"
    fake_docx.write_text("plain text pretending to be Word")
    exe = tmp_path / "tool.exe"
    exe.write_bytes(b"MZ\x00\x00")
    big = tmp_path / "big.txt"
    big.write_text("x" * 200_000)
    files = [(n, p) for n, p in paths.items()]
    files += [("broken.pdf", broken), ("fake.docx", fake_docx), ("tool.exe", exe), ("big.txt", big)]
    seen: list[tuple[str, int, int]] = []

    async def progress(name: str, done: int, total: int) -> None:
        seen.append((name, done, total))

    async with make_runtime(ingest_max_file_bytes=100_000) as rt:
        assert rt.services is not None
        report = await ingest_files(rt.services, files, user="ann", progress=progress)
        outcome = {f.name: f for f in report.files}
        for name in paths:
            assert outcome[name].error is None and outcome[name].chunks >= 1, outcome[name]
        assert "damaged" in (outcome["broken.pdf"].error or "")
        assert "damaged" in (outcome["fake.docx"].error or "")
        assert (
            outcome["tool.exe"].error
            == "tool.exe: unsupported file type .exe (use txt, md, pdf, docx or html)"
        )
        assert "limit" in (outcome["big.txt"].error or "")
        assert [s[1] for s in seen] == list(range(1, len(files) + 1))
        assert "Added 5 files" in report.summary() and "tool.exe" in report.summary()

        again = await ingest_files(rt.services, [("copy.md", paths["guide.md"])], user="ann")
        assert again.files[0].duplicate and again.files[0].chunks == 0

        hits = await KnowledgeBase(rt.services).search("how long is the router guarantee", limit=2)
        assert hits[0].source == "manual.pdf" and hits[0].page == 2
        rows = await rt.services.audit.tail(20, kind="knowledge_ingest")
        assert len(rows) == len(files) + 1
        assert all("Press the red button" not in str(r.data) for r in rows)


async def test_search_turn_cites_and_audits_only_a_hash(make_runtime: MakeRuntime, tmp_path: Path) -> None:
    async with make_runtime() as rt:
        assert rt.services is not None
        await ingest_files(rt.services, [("manual.pdf", _files(tmp_path)["manual.pdf"])], user="ann")
        query = "resetting the router"
        reply, events = await turn_reply(rt, f"search the knowledge base for {query}")
        finished = [e for e in events if isinstance(e, ToolFinished)]
        assert finished, events and finished[0].tool == "knowledge_search" and finished[0].ok
        assert "red button" in reply and "manual" in reply and "p. 1" in reply
        rows = await rt.services.audit.tail(50)
        assert rt.kommandant is not None
        digest = private_digest(query, rt.kommandant.audit_key)
        calls = [r for r in rows if r.kind in ("intent", "tool_call") and r.tool == "knowledge_search"]
        assert calls and all(r.data["arguments"]["query"] == digest for r in calls)
        assert all(query not in str(r.data) for r in rows if r.kind != "turn")


async def test_contradicting_fact_supersedes_and_recall_by_meaning(
    make_runtime: MakeRuntime, embedder: Embedder
) -> None:
    async with make_runtime() as rt:
        assert rt.services is not None
        await turn_reply(rt, "remember that my car is a red Golf")
        await turn_reply(rt, "remember that I live in Ulm")
        await turn_reply(rt, "remember that I live in Berlin")
        reply, _ = await turn_reply(rt, "remember that my car is a blue Tesla")
        memories = MemoryRepository(rt.services.database.sessionmaker)
        history = await memories.history(user_id="ann", subject="car")
        assert [h.content for h in history] == ["my car is a red Golf", "my car is a blue Tesla"]
        assert history[0].superseded_by == history[1].id and history[1].superseded_by is None
        where = await memories.history(user_id="ann", subject="where i live")
        assert where[0].superseded_by == where[1].id
        reply, _ = await turn_reply(rt, "what is my car")
        assert "Tesla" in reply and "Golf" not in reply
        found = await memories.recall(
            user_id="ann",
            query="which city do I live in",
            embedding=(await embedder.embed(["which city do I live in"]))[0],
        )
        assert found and found[0][0].content == "I live in Berlin"
        assert found[0][0].access_count == 0  # the count is for the next read
        again = await memories.recall(user_id="ann", query="car")
        assert again[0][0].access_count >= 1
