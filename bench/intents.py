"""Intent parsing latency over the intent table, beside bare hassil on the same templates, in one run.

python bench/intents.py            # prints JSON
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hassil import Intents, recognize_best  # noqa: E402

from intents import Recognizer  # noqa: E402
from intents.recognizer import _live_slot_lists  # noqa: E402
from intents.templates import load_templates, with_live_list_placeholders  # noqa: E402
from tests.intents.table import load_table  # noqa: E402
from tools import builtin_catalog  # noqa: E402

ROUNDS = 5


def _latencies(texts: list[str], parse: Callable[[str], Any], rounds: int) -> list[float]:
    samples: list[float] = []
    for _ in range(rounds):
        for text in texts:
            start = time.perf_counter()
            parse(text)
            samples.append((time.perf_counter() - start) * 1000.0)
    return samples


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 3),
        "max_ms": round(ordered[-1], 3),
        "mean_ms": round(statistics.fmean(ordered), 3),
    }


def bench_parse(rounds: int = ROUNDS) -> dict[str, Any]:
    """Latency per utterance of ``Recognizer.recognize`` and of bare ``hassil.recognize_best``.

    Both see the same utterances (the test table) and the same templates and live lists. The
    recognizer's miss cache is cleared before every call so repeated rounds measure real work.
    """
    table = load_table()
    texts = table.utterances()
    catalog = builtin_catalog()

    start = time.perf_counter()
    recognizer = Recognizer(catalog, timezone=table.timezone)
    build_ms = (time.perf_counter() - start) * 1000.0

    def parse(text: str) -> Any:
        recognizer.clear_cache()
        return recognizer.recognize(text, lists=table.lists, now=table.now)

    intents = Intents.from_dict(with_live_list_placeholders(load_templates()))
    slot_lists = dict(_live_slot_lists(table.lists.key()))

    def bare(text: str) -> Any:
        return recognize_best(text, intents, slot_lists=slot_lists)

    for text in texts:  # warm up both
        parse(text)
        bare(text)
    ours = _latencies(texts, parse, rounds)
    baseline = _latencies(texts, bare, rounds)
    matched = sum(1 for text in texts if parse(text))
    bare_matched = sum(1 for text in texts if bare(text) is not None)
    return {
        "utterances": len(texts),
        "rounds": rounds,
        "recognizer_build_ms": round(build_ms, 1),
        "recognizer": {**_summary(ours), "matched": matched},
        "baseline_bare_hassil": {**_summary(baseline), "matched": bare_matched},
    }


def main() -> dict[str, Any]:
    return {"parse": bench_parse()}


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
