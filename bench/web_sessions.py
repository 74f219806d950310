"""Web sessions and login throttling: what the per-request session check and a login's throttle
bookkeeping cost, each beside its baseline measured in the same run.

python bench/web_sessions.py [--runs 2000] [--logins 30]      # prints JSON

- per request: ``WebSessions.check`` answered from its cache (the usual case: a few seconds per session)
  beside decoding the same login token alone (what Chainlit does on every request anyway), and answered
  from Postgres (cache expired) beside one primary-key read of the account (Chainlit reads its user row
  on every request anyway);
- per password login: claiming the attempt and settling it (``LoginAttemptRepository``), beside the
  scrypt password check itself.

On a fresh embedded PostgreSQL (pgserver) in a temporary folder. Targets (relative, since a loaded
machine moves every absolute figure): a cached check under 1.5 times the decode alone, one from
Postgres under 2 times the primary-key read, the throttle under half the password check.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import jwt  # noqa: E402

from assistant.web.sessions import SESSION_CLAIM, WebSessions  # noqa: E402
from assistant.web.throttle import ACCOUNT, ADDRESS  # noqa: E402
from storage import Database  # noqa: E402
from storage.login_attempts import LoginAttemptRepository  # noqa: E402
from storage.web_accounts import WebAccountRepository, hash_password, verify_password  # noqa: E402
from storage.web_sessions import WebSessionRepository  # noqa: E402

SECRET = "bench-secret-" + "x" * 40


async def timed(call: Callable[[], Awaitable[Any]], runs: int) -> dict[str, float]:
    """Median and p99 of ``runs`` sequential calls, in milliseconds, after a short warm-up."""
    for _ in range(min(50, runs)):
        await call()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 4),
        "p99_ms": round(samples[max(0, int(len(samples) * 0.99) - 1)], 4),
    }


async def bench(runs: int, logins: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        async with Database(data_dir=Path(folder) / "pg") as db:
            await WebAccountRepository(db.sessionmaker).add("bench", "bench-password", "operator")
            repository = WebSessionRepository(db.sessionmaker)
            cached = WebSessions(repository, SECRET, check_seconds=5.0, auto_login=False)
            uncached = WebSessions(repository, SECRET, check_seconds=0.0, auto_login=False)
            sid = await cached.start("bench", "password")
            claims = {"identifier": "bench", "metadata": {"role": "operator", SESSION_CLAIM: sid}}
            token = jwt.encode({**claims, "exp": datetime.now(UTC) + timedelta(hours=1)}, SECRET, "HS256")

            async def decode_only() -> None:
                jwt.decode(token, SECRET, algorithms=["HS256"])

            async def check(sessions: WebSessions) -> None:
                assert await sessions.check(token) is True

            attempts = LoginAttemptRepository(db.sessionmaker)

            async def throttle() -> None:
                assert (
                    await attempts.claim({"account": ("bench", ACCOUNT), "address": ("10.0.0.1", ADDRESS)})
                    == 0
                )
                await attempts.forgive("account", "bench")
                await attempts.uncount("address", "10.0.0.1")

            stored = hash_password("bench-password")

            async def password_check() -> None:
                assert await asyncio.to_thread(verify_password, "bench-password", stored)

            accounts = WebAccountRepository(db.sessionmaker)

            async def account_read() -> None:
                assert await accounts.get("bench") is not None

            decode = await timed(decode_only, runs)
            read = await timed(account_read, max(50, runs // 10))
            from_cache = await timed(lambda: check(cached), runs)
            from_db = await timed(lambda: check(uncached), max(50, runs // 10))
            throttled = await timed(throttle, logins)
            scrypt = await timed(password_check, logins)
    return {
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "per_request": {
            "baseline_decode_token": decode,
            "session_check_cached": from_cache,
            "baseline_account_read": read,
            "session_check_postgres": from_db,
            "target": "cached p50 < 1.5 x decode p50; postgres p50 < 2 x account read p50",
            "met": from_cache["p50_ms"] < 1.5 * decode["p50_ms"] and from_db["p50_ms"] < 2 * read["p50_ms"],
        },
        "per_login": {
            "baseline_password_check": scrypt,
            "throttle_claim_and_settle": throttled,
            "target": "throttle p50 < half the password check",
            "met": throttled["p50_ms"] < scrypt["p50_ms"] / 2,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000, help="checks per variant")
    parser.add_argument("--logins", type=int, default=30, help="logins per variant")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(bench(args.runs, args.logins)), indent=2))


if __name__ == "__main__":
    main()
