"""Search benchmark: pgvector HNSW against exact search, and ingestion throughput with the local model.

Prints one JSON object. In one run on one embedded PostgreSQL:
- N chunks (default 100,000) of 384 dimensions, synthetic and clustered like text embeddings (a Gaussian
  mixture on the unit sphere), loaded with COPY; an HNSW index with the product's parameters
  (m=16, ef_construction=64, cosine) and the product's ef_search (storage.knowledge.EF_SEARCH);
- query latency p50/p99 of the HNSW top-10 beside the exact top-10 (a sequential scan in SQL) as
  baseline, and recall@10 of HNSW against the exact answer computed in numpy (the SQL scan's own recall
  is reported too, as a check that the baseline really is exact);
- ingestion throughput (chunks/s) of the real path (chunk, embed with all-MiniLM-L6-v2 on the CPU, store)
  beside the embedding alone as baseline.
Usage: python bench/search.py [--chunks 100000] [--queries 200] [--ingest 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# The repository instead of bench/ first on the path: bench/mcp.py would shadow the mcp package.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np  # noqa: E402
from sqlalchemy import text  # noqa: E402

from storage import Database  # noqa: E402
from storage.knowledge import EF_SEARCH  # noqa: E402

DIM = 384
TARGETS = {"p50_ms": 5.0, "p99_ms": 20.0, "recall_at_10": 0.95}


def vectors(count: int, rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
    """Unit vectors near random cluster centres (text embeddings cluster by topic)."""
    picks = centres[rng.integers(0, len(centres), count)]
    points = picks + rng.normal(0.0, 0.05, (count, DIM))  # cosine to its centre about 0.7
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def literal(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.6f}" for x in vector) + "]"


async def load(db: Database, data: np.ndarray) -> dict[str, float]:
    async with db.engine.begin() as conn:
        await conn.execute(text("DROP TABLE IF EXISTS bench_vectors"))
        await conn.execute(text(f"CREATE TABLE bench_vectors (id int PRIMARY KEY, embedding vector({DIM}))"))
    started = time.perf_counter()
    async with db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        for start in range(0, len(data), 10_000):
            buffer = io.BytesIO()
            for offset, row in enumerate(data[start : start + 10_000]):
                buffer.write(f"{start + offset}\t{literal(row)}\n".encode())
            buffer.seek(0)
            await driver.copy_to_table("bench_vectors", source=buffer, columns=["id", "embedding"])
        await conn.commit()
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    async with db.engine.begin() as conn:
        await conn.execute(text("SET maintenance_work_mem = '512MB'"))
        await conn.execute(
            text(
                "CREATE INDEX bench_hnsw ON bench_vectors USING hnsw (embedding vector_cosine_ops) "
                "WITH (m = 16, ef_construction = 64)"
            )
        )
        await conn.execute(text("ANALYZE bench_vectors"))
    return {"copy_s": round(loaded, 1), "index_build_s": round(time.perf_counter() - started, 1)}


EXACT_SQL = "SELECT id FROM bench_vectors ORDER BY (embedding <=> CAST(:q AS vector)) + 0 LIMIT 10"
"""The exact top-10: ``+ 0`` hides the ordering from the HNSW index, so the plan is a (parallel) sequential
scan. The text differs from the HNSW query on purpose: a prepared statement with the same text would keep
its cached plan across a changed ``enable_indexscan`` and quietly use the index."""
HNSW_SQL = "SELECT id FROM bench_vectors ORDER BY embedding <=> CAST(:q AS vector) LIMIT 10"


async def top10(db: Database, query: np.ndarray, *, exact: bool) -> tuple[list[int], float]:
    async with db.engine.begin() as conn:
        if not exact:
            await conn.execute(text(f"SET LOCAL hnsw.ef_search = {EF_SEARCH}"))
        started = time.perf_counter()
        rows = await conn.execute(text(EXACT_SQL if exact else HNSW_SQL), {"q": literal(query)})
        ids = [row[0] for row in rows]
        return ids, (time.perf_counter() - started) * 1000


def true_top10(data: np.ndarray, query: np.ndarray) -> list[int]:
    """The exact top-10 by cosine distance, computed outside the database (the data are unit vectors)."""
    scores = data @ query
    best = np.argpartition(-scores, 10)[:10]
    return [int(i) for i in best[np.argsort(-scores[best])]]


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 3),
    }


async def search_bench(db: Database, chunks: int, queries: int) -> dict[str, Any]:
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(200, DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    data = vectors(chunks, rng, centres)
    setup = await load(db, data)
    probes = vectors(queries, rng, centres)
    for probe in probes[:20]:  # warm caches for both plans
        await top10(db, probe, exact=False)
    hnsw_ms, exact_ms, recalls, exact_recalls = [], [], [], []
    for probe in probes:
        approx, took = await top10(db, probe, exact=False)
        hnsw_ms.append(took)
        scanned, took = await top10(db, probe, exact=True)
        exact_ms.append(took)
        truth = true_top10(data, probe)
        recalls.append(len(set(approx) & set(truth)) / 10)
        exact_recalls.append(len(set(scanned) & set(truth)) / 10)
    hnsw = percentiles(hnsw_ms)
    recall = round(float(np.mean(recalls)), 4)
    return {
        "chunks": chunks,
        "dimensions": DIM,
        "queries": queries,
        "ef_search": EF_SEARCH,
        **setup,
        "hnsw": hnsw,
        "baseline_exact": percentiles(exact_ms),
        "recall_at_10": recall,
        "baseline_exact_recall_at_10": round(float(np.mean(exact_recalls)), 4),
        "targets": TARGETS,
        "meets_targets": hnsw["p50_ms"] <= TARGETS["p50_ms"]
        and hnsw["p99_ms"] <= TARGETS["p99_ms"]
        and recall >= TARGETS["recall_at_10"],
    }


async def ingest_bench(db: Database, count: int, data_dir: Path) -> dict[str, Any]:
    from agents.documents import text_document
    from agents.knowledge import KnowledgeBase
    from assistant.runtime import Runtime
    from embeddings import embedder_from_settings
    from settings import Settings

    settings = Settings(_env_file=None, data_dir=data_dir, database_url=db.url, llm_model="")  # type: ignore[call-arg]
    embedder = embedder_from_settings(settings)
    await embedder.embed(["warm up"])
    passages = [
        f"Passage {i}: the {('north', 'south', 'east', 'west')[i % 4]} office keeps item {i} in room "
        f"{i % 97}, and its maintenance happens every {i % 12 + 1} weeks by team {i % 13}."
        for i in range(count)
    ]
    started = time.perf_counter()
    await embedder.embed(passages)
    embed_rate = count / (time.perf_counter() - started)
    async with Runtime(settings, agents=(), database=db) as rt:
        assert rt.services is not None
        knowledge = KnowledgeBase(rt.services)
        started = time.perf_counter()
        stored = 0
        for start in range(0, count, 100):  # documents of 100 paragraphs, packed into ~1000-char chunks
            body = "\n\n".join(passages[start : start + 100])
            document = text_document(body, f"bench {start}")
            entry, _ = await knowledge.add(document, source=f"bench-{start}.txt", user="bench")
            stored += entry.chunks
        took = time.perf_counter() - started
        ingest_rate = stored / took
    return {
        "passages": count,
        "chunks": stored,
        "passages_per_s": round(count / took, 1),
        "model": embedder.model,
        "chunks_per_s": round(ingest_rate, 1),
        "baseline_embedding_only_passages_per_s": round(embed_rate, 1),
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="kommandant-bench-search-"))
    try:
        async with Database(data_dir=folder / "pgdata") as db:
            search = await search_bench(db, args.chunks, args.queries)
            async with db.engine.begin() as conn:
                await conn.execute(text("DROP TABLE bench_vectors"))
            ingest = await ingest_bench(db, args.ingest, folder / "data")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "search": search,
        "ingest": ingest,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ingest", type=int, default=1000)
    print(json.dumps(asyncio.run(main(parser.parse_args())), indent=2))
