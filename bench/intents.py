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

    def heard(text: str) -> Any:
        recognizer.clear_cache()
        return recognizer.recognize_heard(text, lists=table.lists, now=table.now)

    # the spoken path on commands and on chatter (where the search for a misheard command runs in full)
    spoken = texts + _negatives()
    for text in spoken:
        heard(text)
    return {
        "utterances": len(texts),
        "rounds": rounds,
        "recognizer_build_ms": round(build_ms, 1),
        "recognizer": {**_summary(ours), "matched": matched},
        "baseline_bare_hassil": {**_summary(baseline), "matched": bare_matched},
        "spoken_path": {
            "utterances": len(spoken),
            "recognize_heard": _summary(_latencies(spoken, heard, 1)),
            "baseline_bare_hassil": _summary(_latencies(spoken, bare, 1)),
        },
        "huge_inputs": _huge_inputs(parse),
    }


def _negatives() -> list[str]:
    """The labelled chatter of tests/intents/data (no command: the spoken path searches the hardest)."""
    import yaml

    texts: list[str] = []
    for name in ("heard.yaml", "held_out.yaml"):
        data = yaml.safe_load((ROOT / "tests" / "intents" / "data" / name).read_text(encoding="utf-8"))
        texts.extend(text for group in data["negatives"].values() for text in group)
    return texts


HUGE_INPUTS = {
    "100k_x": "x" * 100_000,
    "5000_commands": "start the backup bot " * 5000,
    "100k_emoji": "\N{ROBOT FACE}" * 100_000,
    "remember_120k": "remember that " + "ab " * 40_000,
}


def _huge_inputs(parse: Callable[[str], Any]) -> dict[str, Any]:
    """Milliseconds to parse each pathological input once (target: well under 1 s each)."""
    took = {}
    for name, text in HUGE_INPUTS.items():
        start = time.perf_counter()
        parse(text)
        took[name] = round((time.perf_counter() - start) * 1000.0, 1)
    return {"ms": took, "target_ms_each": 1000}


TURN_TEXTS = [
    "remember that my editor is neovim",
    "what is my editor",
    "what's the status",
    "show my reminders",
    "remind me to stretch in an hour",
    "show the last 5 audit entries",
]
TURN_ROUNDS = 50


async def _turn_latencies(settings: Any, database: Any, rounds: int) -> dict[str, Any]:
    from agents import BUILTIN_AGENTS
    from assistant.events import IntentRecognized, ReplyDone, Turn
    from assistant.runtime import Runtime

    intent_to_reply: list[float] = []
    whole: list[float] = []
    async with Runtime(settings, agents=list(BUILTIN_AGENTS), database=database) as rt:
        assert rt.kommandant is not None
        for text in TURN_TEXTS:  # warm-up: connections, prepared statements
            [
                e
                async for e in rt.kommandant.handle(
                    Turn(text=text, user="bench", channel="bench", role="admin")
                )
            ]
        for _ in range(rounds):
            for text in TURN_TEXTS:
                start = time.perf_counter()
                recognized = None
                async for event in rt.kommandant.handle(
                    Turn(text=text, user="bench", channel="bench", role="admin")
                ):
                    if isinstance(event, IntentRecognized) and recognized is None:
                        recognized = time.perf_counter()
                    elif isinstance(event, ReplyDone):
                        end = time.perf_counter()
                assert recognized is not None, text
                intent_to_reply.append((end - recognized) * 1000.0)
                whole.append((end - start) * 1000.0)
    return {"intent_to_reply": _summary(intent_to_reply), "whole_turn": _summary(whole)}


def bench_turns(rounds: int = TURN_ROUNDS) -> dict[str, Any]:
    """Text turn latency (intent recognised -> reply done) over RabbitBus, beside LocalBus, same run.

    Real embedded PostgreSQL, every agent in this process, each turn audited (4+ chained rows).
    """
    import asyncio
    import contextlib
    import shutil
    import tempfile
    import uuid

    from pydantic import SecretStr

    from agents import BUILTIN_AGENTS
    from bus.rabbit import Topology, delete_topology
    from settings import Settings
    from storage import Database
    from storage.embedded import stop_embedded

    async def run() -> dict[str, Any]:
        data_dir = Path(tempfile.mkdtemp(prefix="kommandant-bench-")) / "pgdata"
        base = Settings(_env_file=None, data_dir=data_dir.parent, amqp_url=None)  # type: ignore[call-arg]
        try:
            async with Database(data_dir=data_dir) as database:
                local = await _turn_latencies(base, database, rounds)
                rabbit_settings = base.model_copy(
                    update={
                        "amqp_url": SecretStr("amqp://guest:guest@127.0.0.1:5672/"),
                        "bus_prefix": f"kbench{uuid.uuid4().hex[:6]}",
                    }
                )
                try:
                    rabbit: dict[str, Any] = await _turn_latencies(rabbit_settings, database, rounds)
                except Exception as err:
                    rabbit = {"error": f"RabbitMQ unavailable: {err}"}
                finally:
                    with contextlib.suppress(Exception):
                        await delete_topology(
                            rabbit_settings.amqp_url.get_secret_value(),  # type: ignore[union-attr]
                            Topology(rabbit_settings.bus_prefix),
                            BUILTIN_AGENTS,
                        )
        finally:
            await stop_embedded(data_dir)
            shutil.rmtree(data_dir.parent, ignore_errors=True)
        return {
            "turns": len(TURN_TEXTS) * rounds,
            "rabbit_bus": rabbit,
            "local_bus_baseline": local,
            "targets": {"rabbit_intent_to_reply_p50_ms": 15, "rabbit_intent_to_reply_p99_ms": 50},
        }

    return asyncio.run(run())


def main() -> dict[str, Any]:
    return {"parse": bench_parse(), "turns": bench_turns()}


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
