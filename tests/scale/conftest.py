"""The distributed stack under faults: `kommandant worker` processes on the real RabbitMQ and Postgres, the
real Kommandant core as their caller, and the faults themselves (SIGKILL, broker connections closed)."""

from __future__ import annotations

import asyncio
import json
import random
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio
from pydantic import SecretStr
from sqlalchemy import func, select

from assistant.events import Failed, ReplyDone, ToolFinished, Turn
from assistant.kommandant import TURN_CRASHED, Kommandant
from assistant.runtime import Runtime
from bus import Bus, Topology
from bus.rabbit import delete_topology
from settings import Settings
from storage import Database
from storage.models import AuditRow, CallLease, Memory
from tests.conftest import require_tool
from tests.test_worker_stop import worker_env

ROOT = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 3.0
"""The call lease in these tests (``KOMMANDANT_CALL_LEASE_SECONDS``): a killed worker's call is taken
over this long after its claim, not after the default 10 s."""
WORKER_START_TIMEOUT = 90.0


@dataclass
class Worker:
    """One `kommandant worker` process and where its output goes."""

    process: asyncio.subprocess.Process
    log: Path
    ready: bool = False


class WorkerPool:
    """`kommandant worker <agent>` processes under one bus prefix: started, killed, replaced."""

    def __init__(self, agent: str, env: dict[str, str], logs: Path) -> None:
        self.agent, self.env, self.logs = agent, env, logs
        self.workers: list[Worker] = []
        self.started = 0
        self.start_seconds: list[float] = []
        """How long each worker took from spawn to serving (the imports, the database, the broker)."""

    @property
    def serving(self) -> list[Worker]:
        return [w for w in self.workers if w.ready and w.process.returncode is None]

    async def start(self) -> Worker:
        """Spawn a worker and return once it says it serves (its stdout's "Serving" line)."""
        self.started += 1
        log = self.logs / f"{self.agent}-{self.started}.log"
        spawned = time.perf_counter()
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "assistant.cli", "worker", self.agent,
                cwd=ROOT, env=self.env, stdout=out, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
        worker = Worker(process, log)
        self.workers.append(worker)
        async with asyncio.timeout(WORKER_START_TIMEOUT):
            while b"Serving" not in log.read_bytes():
                if process.returncode is not None:
                    raise AssertionError(f"worker exited {process.returncode}: {self.tail(worker)}")
                await asyncio.sleep(0.05)
        self.start_seconds.append(time.perf_counter() - spawned)
        worker.ready = True
        return worker

    async def kill(self, rng: random.Random, busy: Iterable[int] = ()) -> int:
        """SIGKILL a serving worker chosen at random, among those whose pid is in ``busy`` if any is; its
        pid."""
        serving = self.serving
        victim = rng.choice([w for w in serving if w.process.pid in set(busy)] or serving)
        victim.process.send_signal(signal.SIGKILL)
        await victim.process.wait()
        return victim.process.pid

    def tail(self, worker: Worker, chars: int = 3000) -> str:
        return worker.log.read_text(errors="replace")[-chars:]

    def warnings(self) -> Counter[str]:
        """Warnings and errors every worker logged (JSON lines), counted by their gist (ids and numbers
        dropped), to say what the faults looked like from the workers' side."""
        seen: Counter[str] = Counter()
        for worker in self.workers:
            for line in worker.log.read_text(errors="replace").splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and record.get("level") in ("WARNING", "ERROR", "CRITICAL"):
                    gist = re.sub(r"[0-9a-f]{8,}|\d+", "#", str(record.get("message", "")))[:160]
                    seen[f"{record['level']} {record.get('logger')}: {gist}"] += 1
        return seen

    async def close(self) -> None:
        """SIGTERM the workers still running (they drain), SIGKILL any that outlive a few seconds."""
        running = [w.process for w in self.workers if w.process.returncode is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(15):
                await asyncio.gather(*(p.wait() for p in running))
        except TimeoutError:
            for process in running:
                if process.returncode is None:
                    process.kill()
            await asyncio.gather(*(p.wait() for p in running))


@dataclass
class Outcome:
    """What one turn brought back to its caller."""

    text: str
    seconds: float
    finished: list[ToolFinished] = field(default_factory=list)
    failed: list[Failed] = field(default_factory=list)
    replies: list[ReplyDone] = field(default_factory=list)
    hung: bool = False

    @property
    def ok(self) -> bool:
        return len(self.finished) == 1 and self.finished[0].ok

    @property
    def call_id(self) -> str | None:
        return self.finished[0].call_id if len(self.finished) == 1 else None

    def kind(self) -> str:
        """``ok``, or the kind of error the caller was told (by its wording)."""
        if self.hung:
            return "hung"
        if self.ok:
            return "ok"
        said = " ".join(f.message for f in self.failed)
        for kind, words in ERROR_KINDS:
            if words in said:
                return kind
        return "other error"


ERROR_KINDS = [
    ("crashed", TURN_CRASHED),
    ("lost while sending", "was lost while it was being sent"),
    ("lost awaiting result", "was lost while waiting for the result"),
    ("not sent", "was not sent"),
    ("no worker", "is not running"),
    ("timeout", "did not answer within"),
    ("deadline", "did not finish before its deadline"),
    ("failed after retries", "failed after"),
]
"""Error kinds by the words the caller is told (``Kommandant._dispatch``, ``RabbitBus``, ``processing``)."""


async def run_turn(kommandant: Kommandant, turn: Turn, bound: float) -> Outcome:
    """One turn through the core, its events sorted; ``hung`` when it did not end within ``bound`` s."""
    outcome = Outcome(text=turn.text, seconds=0.0)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(bound):
            async for event in kommandant.handle(turn):
                if isinstance(event, ToolFinished):
                    outcome.finished.append(event)
                elif isinstance(event, Failed):
                    outcome.failed.append(event)
                elif isinstance(event, ReplyDone):
                    outcome.replies.append(event)
    except TimeoutError:
        outcome.hung = True
    outcome.seconds = time.perf_counter() - started
    return outcome


async def until(check: Callable[[], object], seconds: float) -> None:
    """Poll ``check`` (state of processes or counters this test keeps) until it is truthy."""
    async with asyncio.timeout(seconds):
        while True:
            if check():
                return
            await asyncio.sleep(0.05)


async def effects_by_text(db: Database, prefix: str) -> Counter[str]:
    """How many ``memories`` rows hold each fact starting with ``prefix`` (superseded ones included)."""
    async with db.sessionmaker() as session:
        rows = await session.execute(
            select(Memory.content, func.count())
            .where(Memory.content.like(f"{prefix}%"))
            .group_by(Memory.content)
        )
        return Counter({content: count for content, count in rows.all()})


async def leases(db: Database) -> Counter[int]:
    """How many call leases each worker process holds, by pid (a lease names its holder
    ``<host>:<pid>:<id>``): the calls under way in its handlers. Read right after a SIGKILL, the dead
    worker's count is the calls the kill cut off mid-handler."""
    async with db.sessionmaker() as session:
        holders = await session.scalars(select(CallLease.holder))
        return Counter(int(holder.split(":")[1]) for holder in holders.all())


async def audited_results(db: Database, actor_prefix: str) -> dict[str, list[bool]]:
    """The audit trail's ``tool_result`` rows of these actors: call id -> the ``ok`` of each row."""
    async with db.sessionmaker() as session:
        rows = await session.scalars(
            select(AuditRow.data).where(
                AuditRow.kind == "tool_result", AuditRow.actor.like(f"{actor_prefix}%")
            )
        )
        audited: dict[str, list[bool]] = {}
        for data in rows.all():
            audited.setdefault(str(data["call"]), []).append(bool(data["ok"]))
        return audited


async def rabbitmqctl(*args: str, seconds: float = 30.0) -> str:
    """Run ``rabbitmqctl`` (which must exist: these tests fault the real broker); its stdout."""
    program = require_tool("rabbitmqctl", "rabbitmq-server")
    process = await asyncio.create_subprocess_exec(
        program, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(seconds):
        out, err = await process.communicate()
    if process.returncode != 0:
        raise AssertionError(
            f"rabbitmqctl {' '.join(args)} exited {process.returncode}: {err.decode()[-500:]}"
        )
    return out.decode()


async def close_connections(prefix: str, reason: str) -> list[str]:
    """Close, from the broker's side, every connection of this prefix (core and workers); their names.

    Only ours: ``close_all_connections`` would also cut whatever else uses the shared broker meanwhile.
    Every RabbitBus names its connection ``<name>:<prefix>:<pid>:<id>``.
    """
    listing = await rabbitmqctl("-q", "--no-table-headers", "list_connections", "pid", "client_properties")
    ours = {}
    for line in listing.splitlines():
        name = re.search(rf'"connection_name","([^"]*:{re.escape(prefix)}:[^"]*)"', line)
        if name:
            ours[line.split("\t", 1)[0]] = name.group(1)
    await asyncio.gather(*(rabbitmqctl("-q", "close_connection", pid, reason) for pid in ours))
    return sorted(ours.values())


async def consumers(prefix: str, agent: str) -> int:
    """How many consumers the broker has on ``agent``'s queue now (0 when it has no such queue)."""
    listing = await rabbitmqctl("-q", "--no-table-headers", "list_queues", "name", "consumers")
    for line in listing.splitlines():
        name, _, count = line.partition("\t")
        if name == Topology(prefix).agent_queue(agent):
            return int(count)
    return 0


async def drained(bus: Bus, agent: str, seconds: float = 30.0) -> None:
    """Until no call waits on ``agent``'s queue (the workers took every one)."""
    async with asyncio.timeout(seconds):
        while True:
            if not (await bus.queue_depths([agent]))[agent]:
                return
            await asyncio.sleep(0.2)


@pytest.fixture
def stack_env(db: Database, amqp_url: str, bus_prefix: str, tmp_path: Path) -> dict[str, str]:
    """The environment of this test's `kommandant worker` processes (test database, broker, prefix)."""
    env = worker_env(db, amqp_url, bus_prefix, tmp_path / "data")
    env.update(
        KOMMANDANT_CALL_LEASE_SECONDS=f"{LEASE_SECONDS:g}",
        KOMMANDANT_LOG_FORMAT="json",  # read back by WorkerPool.warnings
    )
    return env


WARM_EMBEDDER = """
import asyncio
from embeddings import embedder_from_settings
from settings import Settings
asyncio.run(embedder_from_settings(Settings()).embed(["warm"]))
"""


async def warm_embedding_model(env: dict[str, str]) -> None:
    """Load the workers' embedding model once, in a process of its own: on a machine that never ran it,
    that exports it to ONNX (PyTorch, once per user cache), which every worker starting meanwhile would
    otherwise do at the same time, on the same two cores as the calls."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WARM_EMBEDDER, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    async with asyncio.timeout(300):
        out, _ = await process.communicate()
    assert process.returncode == 0, out.decode(errors="replace")[-2000:]


@pytest_asyncio.fixture(loop_scope="session")
async def memory_workers(stack_env: dict[str, str], tmp_path: Path) -> AsyncIterator[WorkerPool]:
    """Workers of the memory agent (none started yet; the embedding model is ready to load); stopped
    afterwards."""
    await warm_embedding_model(stack_env)
    logs = tmp_path / "worker-logs"
    logs.mkdir()
    pool = WorkerPool("memory", stack_env, logs)
    try:
        yield pool
    finally:
        await pool.close()


@pytest_asyncio.fixture(loop_scope="session")
async def core(
    db: Database, settings: Settings, amqp_url: str, bus_prefix: str, tmp_path: Path
) -> AsyncIterator[Kommandant]:
    """The real Kommandant on a RabbitBus with no agent in its process, as `kommandant up` builds it in
    distributed mode; this prefix's exchanges and queues are deleted afterwards."""
    configured = settings.model_copy(
        update={
            "amqp_url": SecretStr(amqp_url),
            "bus_prefix": bus_prefix,
            "data_dir": tmp_path / "data",  # the workers' too: one audit key
            "llm_model": "",
            "call_timeout": 30.0,
            "no_worker_grace": 5.0,
        }
    )
    try:
        async with Runtime(configured, agents=(), database=db) as runtime:
            assert runtime.kommandant is not None
            yield runtime.kommandant
    finally:
        await delete_topology(amqp_url, Topology(bus_prefix), ["memory"])


def have_rabbitmqctl() -> None:
    """These tests fault the broker with rabbitmqctl: without it, skip (fail under CI=true)."""
    require_tool("rabbitmqctl", "rabbitmq-server")
