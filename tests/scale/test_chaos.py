"""Chaos: 2,000 side-effecting tool calls from 20 concurrent sessions through the real Kommandant core on
RabbitMQ, served by `kommandant worker memory` processes that are SIGKILLed and replaced at random, while
the broker closes all of this test's connections (core and workers) twice. No call hangs or is lost, no
effect happens twice, the DLQ holds only what failed, and the audit trail is intact and agrees with what
each caller was told. Real processes, real broker, real Postgres."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import random
import time
from collections import Counter

import pytest

from assistant.events import Turn
from assistant.kommandant import Kommandant
from storage import Database
from storage.audit import AuditLog
from tests.scale.conftest import (
    LEASE_SECONDS,
    Outcome,
    WorkerPool,
    audited_results,
    close_connections,
    drained,
    effects_by_text,
    have_rabbitmqctl,
    leases,
    run_turn,
    until,
)

pytestmark = [pytest.mark.rabbit, pytest.mark.slow]
SESSIONS = 20
CALLS_PER_SESSION = 100
WORKERS = 3
KILLS = 12
"""Kills spread over the run (at least 10 must happen)."""
CUTS = 2
TURN_BOUND = 60.0
"""Seconds a turn may take before it counts as hung: the call timeout (30 s) and then some."""


def fact(session: int, n: int) -> str:
    return f"chaos fact {n} of session {session} is {(session * 7919 + n * 104729) % 1000}"


class Chaos:
    """Kills a random worker, preferably one running calls, and starts its replacement; cuts the broker
    connections; each at set points of the run's progress. One worker always keeps serving meanwhile."""

    def __init__(self, pool: WorkerPool, db: Database, prefix: str, total: int, rng: random.Random) -> None:
        self.pool, self.db, self.prefix, self.total, self.rng = pool, db, prefix, total, rng
        self.finished = 0
        self.cut_off: list[int] = []
        """Per kill: the calls under way on the killed worker (its leases, read right after the kill)."""
        self.closed: list[list[str]] = []
        """The connections each cut closed."""
        self.log: list[str] = []
        self._replacements: set[asyncio.Task[object]] = set()
        self._started = time.perf_counter()

    def note(self, what: str) -> None:
        self.log.append(f"{time.perf_counter() - self._started:6.1f}s @{self.finished}: {what}")

    def _reached(self, due: float) -> bool:
        return self.finished >= due

    async def _busy(self) -> set[int]:
        """The pids of workers with a call in their handler, waiting up to two seconds for one: a kill
        then cuts off calls mid-handler (the double-run window the call leases close)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):
                while True:
                    if held := await leases(self.db):
                        return set(held)
                    await asyncio.sleep(0.05)
        return set()

    async def run(self) -> None:
        """The faults, in order of the share of calls finished when each is due; none after the last call."""
        kills = [0.04 + 0.8 * i / (KILLS - 1) for i in range(KILLS)]
        cuts = [0.35, 0.7]
        for share, what in sorted([(k, "kill") for k in kills] + [(c, "cut") for c in cuts]):
            due = min(share * self.total, self.total - 1)
            await until(functools.partial(self._reached, due), seconds=1800)
            if what == "cut":
                closed = await close_connections(self.prefix, "chaos test: connection cut")
                self.closed.append(closed)
                self.note(f"cut: closed {', '.join(closed)}")
                continue
            await until(lambda: len(self.pool.serving) >= 2, seconds=300)  # never the last one serving
            if self.finished >= self.total:
                return
            pid = await self.pool.kill(self.rng, busy=await self._busy())
            self.cut_off.append((await leases(self.db))[pid])
            self.note(f"killed {pid} with {self.cut_off[-1]} call(s) under way")
            task = asyncio.create_task(self.pool.start())
            self._replacements.add(task)
            task.add_done_callback(self._replacements.discard)

    async def settle(self) -> None:
        """Let the replacements still starting finish (their errors surface here)."""
        await asyncio.gather(*self._replacements)


def cpu_seconds(since: os.times_result) -> tuple[float, float]:
    """CPU seconds since ``since``: of this process, and of its child processes that ended (the
    workers, killed or stopped, and rabbitmqctl). Postgres and RabbitMQ are not counted."""
    now = os.times()
    return (
        now.user + now.system - since.user - since.system,
        now.children_user + now.children_system - since.children_user - since.children_system,
    )


async def session(kommandant: Kommandant, number: int, chaos: Chaos) -> list[Outcome]:
    """One person typing their facts one after another."""
    outcomes = []
    for n in range(CALLS_PER_SESSION):
        turn = Turn(
            text=f"remember that {fact(number, n)}", user=f"chaos-{number}", channel="cli", role="operator"
        )
        outcomes.append(await run_turn(kommandant, turn, TURN_BOUND))
        chaos.finished += 1
    return outcomes


async def test_chaos_kills_and_cuts_lose_nothing_and_double_nothing(
    core: Kommandant, memory_workers: WorkerPool, db: Database, bus_prefix: str
) -> None:
    have_rabbitmqctl()
    began, cpu_before = time.perf_counter(), os.times()
    await asyncio.gather(*(memory_workers.start() for _ in range(WORKERS)))
    warm = time.perf_counter() - began
    total = SESSIONS * CALLS_PER_SESSION
    chaos = Chaos(memory_workers, db, bus_prefix, total, random.Random(21))
    faults = asyncio.create_task(chaos.run())
    run_began = time.perf_counter()
    per_session = await asyncio.gather(*(session(core, s, chaos) for s in range(SESSIONS)))
    run_seconds = time.perf_counter() - run_began
    await faults
    await chaos.settle()

    outcomes = {fact(s, n): o for s, seq in enumerate(per_session) for n, o in enumerate(seq)}
    kinds = Counter(o.kind() for o in outcomes.values())
    bus = core.services.bus
    await drained(bus, "memory")  # whatever is still queued is taken (and answered to nobody)
    await memory_workers.close()  # SIGTERM: each finishes what it holds, so the count below is final
    effects = await effects_by_text(db, "chaos fact ")
    letters = await bus.dead_letters()
    audit = await AuditLog(db.sessionmaker).verify()
    audited = await audited_results(db, "chaos-")
    seconds, cpu = time.perf_counter() - began, cpu_seconds(cpu_before)

    errors = {k: v for k, v in kinds.items() if k != "ok"}
    print(
        f"\nchaos: {total} calls, {kinds['ok']} ok, errors {errors or 'none'}, {len(chaos.cut_off)} kills "
        f"(cutting off {sum(chaos.cut_off)} calls mid-handler), "
        f"{len(chaos.closed)} cuts ({sum(map(len, chaos.closed))} connections), {len(letters)} dead letters; "
        f"{seconds:.1f} s in all ({warm:.1f} s to start {WORKERS} workers, {run_seconds:.1f} s of calls, "
        f"{total / run_seconds:.0f} calls/s); worker start "
        f"{min(memory_workers.start_seconds):.1f}-{max(memory_workers.start_seconds):.1f} s; "
        f"slowest turn {max(o.seconds for o in outcomes.values()):.1f} s; lease {LEASE_SECONDS:g} s; "
        f"CPU {cpu[0]:.0f} s in the core (this process), {cpu[1]:.0f} s in the workers (and rabbitmqctl)"
    )
    print("\n".join(chaos.log))
    for gist, count in memory_workers.warnings().most_common(12):
        print(f"  worker log x{count}: {gist}")

    # Every call ended in exactly one result or one clear error, and none hung.
    assert kinds["hung"] == 0, [o.text for o in outcomes.values() if o.hung][:5]
    for text, outcome in outcomes.items():
        assert len(outcome.finished) == 1 and len(outcome.replies) == 1, (text, outcome)
        assert outcome.ok or (outcome.failed and outcome.failed[0].message), (text, outcome)
    assert kinds["crashed"] == 0 and kinds["other error"] == 0, errors
    # Every effect happened at most once; every call that reported success, exactly once.
    assert set(effects) <= set(outcomes), sorted(set(effects) - set(outcomes))[:5]
    twice = {text: count for text, count in effects.items() if count > 1}
    assert not twice, f"{len(twice)} effects happened more than once: {list(twice.items())[:5]}"
    missing = [text for text, o in outcomes.items() if o.ok and effects[text] != 1]
    assert not missing, f"{len(missing)} calls reported success without their effect: {missing[:5]}"
    # The dead-letter queue holds only calls whose caller was told they failed.
    failed_calls = {o.call_id for o in outcomes.values() if not o.ok}
    strays = [(letter.id, letter.reason) for letter in letters if letter.id not in failed_calls]
    assert not strays, f"dead letters of calls reported as done (or unknown): {strays[:5]}"
    # The audit trail is intact and says of each call what its caller was told.
    assert audit.ok, audit.problem
    disagree = [o.text for o in outcomes.values() if audited.get(o.call_id or "") != [o.ok]]
    assert not disagree, f"{len(disagree)} calls audited otherwise than answered: {disagree[:5]}"
    # The faults really happened, and most calls still got through.
    assert len(chaos.cut_off) >= 10 and len(chaos.closed) == CUTS
    assert sum(chaos.cut_off) >= 5, f"the kills cut off only {sum(chaos.cut_off)} calls mid-handler"
    core_connection = core.services.bus.connection_name  # type: ignore[attr-defined]
    assert all(core_connection in closed and len(closed) >= 2 for closed in chaos.closed), chaos.closed
    assert kinds["ok"] >= 0.9 * total, errors
