"""A worker process for the fault tests: serves one agent on RabbitMQ with the Postgres result store.

The handler appends ``started`` to ``<effects>.started``, works ``--work`` seconds, then appends its side
effect (``done <idempotency key>``) to ``<effects>`` and works ``--after`` seconds more; a call marked
repeatable keys that effect (not appended again for a key already there), as a repeatable tool must.
``--lease`` is the call lease in seconds. ``--crash-after-store`` kills the process (SIGKILL)
right after the result is stored, before the reply is sent and the message acknowledged.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

from bus import Claim, RabbitBus, ResultStore, ToolCall, ToolResult
from storage import Database, PostgresResultStore


class CrashAfterStore:
    """The real store, then a crash at the worst moment: the effect is stored but not yet answered."""

    def __init__(self, inner: ResultStore) -> None:
        self.inner = inner

    async def get(self, key: str) -> dict[str, Any] | None:
        return await self.inner.get(key)

    async def put(self, key: str, tool: str, result: dict[str, Any]) -> dict[str, Any]:
        stored = await self.inner.put(key, tool, result)
        os.kill(os.getpid(), signal.SIGKILL)
        return stored

    async def claim(self, key: str, tool: str, holder: str, seconds: float) -> Claim:
        return await self.inner.claim(key, tool, holder, seconds)

    async def renew(self, key: str, holder: str, seconds: float) -> bool:
        return await self.inner.renew(key, holder, seconds)

    async def release(self, key: str, holder: str) -> None:
        await self.inner.release(key, holder)


def lines_of(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def append(path: Path, line: str) -> None:
    with path.open("a") as f:
        f.write(line + "\n")


async def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("--url", "--prefix", "--db-url", "--agent", "--effects"):
        parser.add_argument(name, required=True)
    parser.add_argument("--work", type=float, default=0.0)
    parser.add_argument("--after", type=float, default=0.0)
    parser.add_argument("--lease", type=float, default=10.0)
    parser.add_argument("--crash-after-store", action="store_true")
    args = parser.parse_args()
    effects = Path(args.effects)

    async def handle(call: ToolCall) -> ToolResult:
        await asyncio.to_thread(append, Path(f"{effects}.started"), f"started {os.getpid()}")
        await asyncio.sleep(args.work)
        done = f"done {call.idempotency_key}"
        if not (call.repeatable and done in await asyncio.to_thread(lines_of, effects)):
            await asyncio.to_thread(append, effects, done)
        await asyncio.sleep(args.after)
        return ToolResult.ok(call.call_id, text=f"done by {os.getpid()}")

    async with Database(args.db_url, migrate=False) as db:
        store: ResultStore = PostgresResultStore(db.sessionmaker)
        if args.crash_after_store:
            store = CrashAfterStore(store)
        bus = RabbitBus(
            args.url, prefix=args.prefix, result_store=store, name="worker", call_lease_seconds=args.lease
        )
        async with bus:
            await bus.serve(args.agent, handle, concurrency=4)
            print("ready", flush=True)
            await asyncio.Event().wait()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
