"""Broker restart: `rabbitmqctl stop_app`, a few seconds of no broker, `start_app`, in the middle of 500
side-effecting calls through the real Kommandant core to `kommandant worker memory` processes. Workers
and the core reconnect by themselves, and no persistent message is lost: every call the broker had
accepted ends in a stored result and its effect, once. Real processes, real broker, real Postgres.

It stops the shared broker for a few seconds: other RabbitMQ tests running at that moment see it too."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter

import pytest
from sqlalchemy import select

from assistant.events import Turn
from assistant.kommandant import Kommandant
from storage import Database
from storage.models import ToolResultRow
from tests.bus.conftest import eventually
from tests.conftest import require_tool
from tests.scale.conftest import (
    Outcome,
    WorkerPool,
    consumers,
    drained,
    effects_by_text,
    have_rabbitmqctl,
    rabbitmqctl,
    run_turn,
    until,
)

pytestmark = [pytest.mark.rabbit, pytest.mark.slow]
SESSIONS = 20
CALLS_PER_SESSION = 25
WORKERS = 2
OUTAGE = 4.0
"""Seconds the broker application stays stopped."""
WATCHDOG = 120
"""Seconds after which a detached `rabbitmqctl start_app` brings the broker back even if this test
process died during the outage (start_app on a running broker does nothing)."""
TURN_BOUND = 60.0
ACCEPTED = ("ok", "lost awaiting result")
"""Outcomes of a call the broker had confirmed: answered, or its answer lost with the caller's channel
(direct reply-to lives on that channel). Either way the call must run, once."""


def fact(session: int, n: int) -> str:
    return f"restart fact {n} of session {session} is {(session * 31 + n * 17) % 100}"


class Restart:
    """Stops the broker application once a share of the calls has finished, starts it again after
    ``OUTAGE`` seconds (always, and a detached watchdog does too should this process die meanwhile)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.finished = 0
        self.stopped_at: int | None = None
        self.down_seconds = 0.0

    async def run(self) -> None:
        await until(lambda: self.finished >= 0.3 * self.total, seconds=600)
        program = require_tool("rabbitmqctl", "rabbitmq-server")
        watchdog = await asyncio.create_subprocess_exec(
            "sh", "-c", f"sleep {WATCHDOG}; exec {program} -q start_app",
            start_new_session=True, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        began = time.perf_counter()
        try:
            self.stopped_at = self.finished
            await rabbitmqctl("-q", "stop_app", seconds=60)
            await asyncio.sleep(OUTAGE)
        finally:
            await rabbitmqctl("-q", "start_app", seconds=90)  # should this fail, the watchdog tries again
            self.down_seconds = time.perf_counter() - began
            watchdog.kill()
            await watchdog.wait()


async def session(kommandant: Kommandant, number: int, restart: Restart) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for n in range(CALLS_PER_SESSION):
        turn = Turn(
            text=f"remember that {fact(number, n)}", user=f"restart-{number}", channel="cli", role="operator"
        )
        outcomes.append(await run_turn(kommandant, turn, TURN_BOUND))
        restart.finished += 1
    return outcomes


async def stored_results(db: Database, keys: set[str]) -> set[str]:
    """Which of these idempotency keys have a stored result."""
    async with db.sessionmaker() as session:
        rows = await session.scalars(select(ToolResultRow.key).where(ToolResultRow.key.in_(keys)))
        return set(rows.all())


async def test_broker_restart_loses_no_accepted_call(
    core: Kommandant,
    memory_workers: WorkerPool,
    db: Database,
    bus_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    have_rabbitmqctl()
    caplog.set_level(logging.INFO, logger="bus.rabbit")
    began = time.perf_counter()
    workers = await asyncio.gather(*(memory_workers.start() for _ in range(WORKERS)))
    total = SESSIONS * CALLS_PER_SESSION
    restart = Restart(total)
    outage = asyncio.create_task(restart.run())
    try:
        per_session = await asyncio.gather(*(session(core, s, restart) for s in range(SESSIONS)))
    finally:
        if restart.stopped_at is None:  # the calls failed before the outage began
            outage.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await outage  # the broker is started again before anything else happens

    outcomes = {fact(s, n): o for s, seq in enumerate(per_session) for n, o in enumerate(seq)}
    kinds = Counter(o.kind() for o in outcomes.values())
    # Every worker came back by itself: still running, consuming again, and a new call gets through.
    assert all(w.process.returncode is None for w in workers), [memory_workers.tail(w) for w in workers]

    async def all_consuming() -> bool:
        return await consumers(bus_prefix, "memory") >= WORKERS

    await eventually(all_consuming, seconds=30)
    after = await run_turn(
        core,
        Turn(text="remember that the broker came back", user="restart-after", channel="cli", role="operator"),
        30,
    )
    assert after.ok, after
    await drained(core.services.bus, "memory")  # the calls the broker kept are served now
    await memory_workers.close()
    effects = await effects_by_text(db, "restart fact ")
    accepted = {text: o for text, o in outcomes.items() if o.kind() in ACCEPTED}
    results = await stored_results(db, {o.call_id for o in accepted.values() if o.call_id})
    seconds = time.perf_counter() - began

    errors = {k: v for k, v in kinds.items() if k != "ok"}
    resent = sum("again after the connection came back" in str(r.msg) for r in caplog.records)
    print(
        f"\nbroker restart: {total} calls, {kinds['ok']} ok, errors {errors or 'none'}, {resent} sent again "
        f"once the core had reconnected; broker stopped after "
        f"{restart.stopped_at} calls for {restart.down_seconds:.1f} s (stop_app, {OUTAGE:g} s, start_app); "
        f"{seconds:.1f} s in all"
    )
    for gist, count in memory_workers.warnings().most_common(10):
        print(f"  worker log x{count}: {gist}")

    assert kinds["hung"] == 0 and kinds["crashed"] == 0 and kinds["other error"] == 0, errors
    for text, outcome in outcomes.items():
        assert len(outcome.finished) == 1 and len(outcome.replies) == 1, (text, outcome)
    assert set(effects) <= set(outcomes)
    twice = {text: count for text, count in effects.items() if count > 1}
    assert not twice, f"{len(twice)} effects happened more than once: {list(twice.items())[:5]}"
    lost = [text for text, o in accepted.items() if effects[text] != 1 or o.call_id not in results]
    assert not lost, f"{len(lost)} calls the broker had accepted never ran to a stored result: {lost[:5]}"
    assert resent, "the broker's outage should have interrupted some calls"
    assert kinds["ok"] >= 0.8 * total, errors  # interrupted calls are sent again under their keys
