"""Password logins throttled per account and per address, with growing waits; every refusal audited.

The policies are pure and tested with inline numbers; the counters run on the real Postgres (parallel
guesses included); the whole path runs against the real web server, the client address coming from a
trusted proxy's ``X-Forwarded-For`` (``TRUSTED_PROXY``) so each test has an address of its own.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select

from assistant.web.login import REFUSED_KIND, UNKNOWN_ACCOUNT, LoginGuard
from assistant.web.throttle import ACCOUNT, ADDRESS, ThrottlePolicy, whole_seconds
from storage import AuditLog, Database
from storage.login_attempts import LoginAttemptRepository, attempt_key
from storage.models import AuditRow, LoginAttempt
from storage.web_accounts import WebAccountRepository
from tests.web.chromium import CHROMIUM_ARGS, require_chromium
from tests.web.conftest import TRUSTED_PROXY, WebServer, run_async

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# --- the policy, pure ------------------------------------------------------------------------------


def test_free_failures_then_doubling_waits_up_to_a_ceiling() -> None:
    policy = ThrottlePolicy(free=5, first_delay=1.0, max_delay=300.0)
    assert [policy.delay(n) for n in range(5)] == [0.0] * 5
    assert [policy.delay(n) for n in range(5, 11)] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    assert policy.delay(14) == 300.0 and policy.delay(10**9) == 300.0  # no overflow, the ceiling holds


def test_the_wait_counts_from_the_last_failure() -> None:
    policy = ThrottlePolicy(free=2, first_delay=4.0)
    assert policy.retry_after(0, None, T0) == 0.0
    assert policy.retry_after(1, _at(0), _at(0)) == 0.0  # still free
    assert policy.retry_after(2, _at(0), _at(1)) == 3.0
    assert policy.retry_after(2, _at(0), _at(4)) == 0.0
    assert policy.retry_after(3, _at(0), _at(1)) == 7.0


def test_failures_are_forgotten_after_a_quiet_spell() -> None:
    policy = ThrottlePolicy(free=5, forget_after=900)
    assert policy.failures_now(9, _at(0), _at(899)) == 9
    assert policy.failures_now(9, _at(0), _at(900)) == 0
    assert policy.failures_now(3, None, _at(0)) == 0


def test_the_eleventh_guess_in_a_minute_is_never_free() -> None:
    """Guessing as fast as allowed, the 11th attempt on one account cannot start within a minute."""
    failures, now = 0, 0.0
    for _ in range(10):
        now += ACCOUNT.retry_after(failures, _at(now) if failures else None, _at(now))
        failures += 1
    assert now + ACCOUNT.delay(failures) > 60
    assert ADDRESS.free > ACCOUNT.free  # an office behind one address gets more room than one account


def test_waits_are_told_in_whole_seconds() -> None:
    assert [whole_seconds(w) for w in (0.01, 1.0, 1.2, 59.9)] == [1, 1, 2, 60]


# --- the counters in Postgres -----------------------------------------------------------------------


def _attempts(name: str, address: str) -> dict[str, tuple[str, ThrottlePolicy]]:
    return {"account": (name, ThrottlePolicy(free=3)), "address": (address, ThrottlePolicy(free=100))}


async def test_a_claim_counts_a_failure_until_the_wait_starts(db: Database) -> None:
    attempts = LoginAttemptRepository(db.sessionmaker)
    assert [await attempts.claim(_attempts("alice", "10.0.0.1")) for _ in range(3)] == [0.0] * 3
    wait = await attempts.claim(_attempts("alice", "10.0.0.1"))
    assert 0.9 < wait <= 1.0
    assert await attempts.claim(_attempts("alice", "10.0.0.1")) > 0  # refused attempts add nothing
    assert await attempts.claim(_attempts("bob", "10.0.0.1")) == 0.0  # another account
    async with db.sessionmaker() as session:
        rows = {(r.scope, r.key): r.failures for r in await session.scalars(select(LoginAttempt))}
    assert rows[("account", attempt_key("alice"))] == 3 and rows[("address", attempt_key("10.0.0.1"))] == 4
    assert not any("alice" in key or "10.0.0.1" in key for _, key in rows)  # kept as hashes only

    await attempts.forgive("account", "alice")
    await attempts.uncount("address", "10.0.0.1")
    assert await attempts.claim(_attempts("alice", "10.0.0.1")) == 0.0
    async with db.sessionmaker() as session:
        address = await session.get(LoginAttempt, ("address", attempt_key("10.0.0.1")))
    assert address is not None and address.failures == 4  # 4 - 1 uncounted + 1 new


async def test_parallel_guesses_cannot_slip_past_the_count(db: Database) -> None:
    attempts = LoginAttemptRepository(db.sessionmaker)
    waits = await asyncio.gather(*(attempts.claim(_attempts("carol", "10.0.0.2")) for _ in range(12)))
    assert sum(1 for w in waits if w == 0.0) == 3  # exactly the free ones, however they interleave


async def test_every_refusal_is_audited_without_the_password(db: Database) -> None:
    accounts = WebAccountRepository(db.sessionmaker)
    await accounts.add("dora", "dora-password-1", "viewer")
    guard = LoginGuard(
        LoginAttemptRepository(db.sessionmaker),
        AuditLog(db.sessionmaker),
        accounts,
        account_policy=ThrottlePolicy(free=1, first_delay=30),
    )
    assert await guard.admit("dora", "10.0.0.3") == 0.0
    await guard.failed("dora", "10.0.0.3")
    assert await guard.admit("dora", "10.0.0.3") > 29
    assert await guard.admit("hunter2-typed-as-a-name", "10.0.0.3") == 0.0
    await guard.failed("hunter2-typed-as-a-name", "10.0.0.3")
    async with db.sessionmaker() as session:
        rows = (await session.scalars(select(AuditRow).where(AuditRow.kind == REFUSED_KIND))).all()
    assert [(r.actor, r.data["reason"]) for r in rows] == [
        ("dora", "wrong name or password"),
        ("dora", "too many failed attempts"),
        (UNKNOWN_ACCOUNT, "wrong name or password"),
    ]
    assert rows[1].data["retry_after"] == 30 and all(r.data["address"] == "10.0.0.3" for r in rows)
    assert "hunter2" not in " ".join(str(r.data) for r in rows)
    assert (await AuditLog(db.sessionmaker).verify()).ok


# --- the running server -----------------------------------------------------------------------------


def _via_proxy(address: str) -> httpx.Client:
    """A client behind the trusted proxy, seen by the server as ``address``."""
    transport = httpx.HTTPTransport(local_address=TRUSTED_PROXY)
    return httpx.Client(transport=transport, headers={"X-Forwarded-For": address})


def _login(client: httpx.Client, web_server: WebServer, name: str, password: str) -> httpx.Response:
    return client.post(f"{web_server.chat}/login", data={"username": name, "password": password})


async def _refusals(web_server: WebServer, address: str) -> list[dict[str, object]]:
    async with Database(web_server.database_url, migrate=False) as db, db.sessionmaker() as session:
        rows = (await session.scalars(select(AuditRow).where(AuditRow.kind == REFUSED_KIND))).all()
        return [dict(r.data) for r in rows if r.data.get("address") == address]


def test_the_eleventh_wrong_password_is_refused_and_the_right_one_works_after_the_wait(
    web_server: WebServer,
) -> None:
    """A guesser firing wrong passwords as fast as the server answers: five are checked, then the
    waits begin. How many of the next six slip in between waits depends on how fast the server
    answers, but never all of them (eleven checks take over a minute: see the policy test above)."""
    name, password = f"thr-{uuid.uuid4().hex[:8]}", "the-right-password"
    address = f"10.11.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    run_async(web_server.add_account(name, password, "viewer"))
    with _via_proxy(address) as client:
        started = time.monotonic()
        answers = [_login(client, web_server, name, f"wrong-guess-{i}") for i in range(11)]
        assert time.monotonic() - started < 60
        statuses = [a.status_code for a in answers]
        assert statuses[:5] == [401] * 5 and statuses[5] == 429, statuses
        assert statuses.count(401) < 11 and set(statuses) == {401, 429}
        refused = answers[5]
        assert "set-cookie" not in refused.headers and refused.json()["detail"] == "tooManyAttempts"
        wait = int(refused.headers["retry-after"])
        assert 1 <= wait <= 300 and f"wait {wait} s" in refused.json()["message"]
        right, waited = _login(client, web_server, name, password), 0
        while right.status_code == 429 and waited < 3:  # the right password waits like any other
            time.sleep(int(right.headers["retry-after"]))
            right, waited = _login(client, web_server, name, password), waited + 1
        assert right.status_code == 200 and "access_token" in right.headers["set-cookie"]
        assert _login(client, web_server, name, "wrong-again").status_code == 401  # count started anew
    wrong = statuses.count(401) + 1  # the burst's checked ones, and the last
    refusals = run_async(_refusals(web_server, address))
    reasons = [r["reason"] for r in refusals]
    assert reasons.count("wrong name or password") == wrong
    assert reasons.count("too many failed attempts") >= statuses.count(429)
    assert all(r["account"] == name for r in refusals)
    assert not any("wrong-guess" in str(r) or password in str(r) for r in refusals)


def test_one_address_guessing_many_accounts_is_throttled(web_server: WebServer) -> None:
    address = f"10.12.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    with _via_proxy(address) as client:
        statuses = [
            _login(client, web_server, f"nobody-{uuid.uuid4().hex[:6]}", "guess-guess").status_code
            for _ in range(ADDRESS.free + 1)
        ]
    assert statuses[: ADDRESS.free] == [401] * ADDRESS.free and statuses[-1] == 429
    with _via_proxy(f"10.13.{uuid.uuid4().int % 250}.1") as other:  # another address is not held up
        assert _login(other, web_server, f"nobody-{uuid.uuid4().hex[:6]}", "guess-guess").status_code == 401


def test_an_untrusted_client_cannot_pick_its_address(web_server: WebServer) -> None:
    claimed = f"10.14.{uuid.uuid4().int % 250}.1"
    name = f"nobody-{uuid.uuid4().hex[:6]}"
    answer = httpx.post(  # from 127.0.0.1, which is no trusted proxy
        f"{web_server.chat}/login",
        data={"username": name, "password": "guess-guess"},
        headers={"X-Forwarded-For": claimed},
    )
    assert answer.status_code == 401
    assert run_async(_refusals(web_server, claimed)) == []
    assert any(r["reason"] == "wrong name or password" for r in run_async(_refusals(web_server, "127.0.0.1")))


def test_an_oversized_login_form_is_refused_before_it_is_read(web_server: WebServer) -> None:
    answer = httpx.post(f"{web_server.chat}/login", data={"username": "x" * 70_000, "password": "p"})
    assert answer.status_code == 413 and "too large" in answer.text


def test_the_login_page_says_to_wait(web_server: WebServer) -> None:
    """In Chromium: after five wrong passwords the page tells the person to wait, not that the password
    is wrong (the 429's status text picks the page's message)."""
    from playwright.sync_api import sync_playwright

    executable = require_chromium()
    name = f"page-{uuid.uuid4().hex[:8]}"
    run_async(web_server.add_account(name, "the-page-password", "viewer"))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            page.goto(f"{web_server.chat}/login")
            page.fill("#email", name)
            page.fill("#password", "the-page-password")
            for _ in range(ACCOUNT.free):  # someone else guessing meanwhile; the last wait is 1 s
                wrong = {"username": name, "password": "nope-nope"}
                assert httpx.post(f"{web_server.chat}/login", data=wrong).status_code == 401
            with page.expect_response(f"{web_server.chat}/login") as answer:
                page.locator('button[type="submit"]').click()
            assert answer.value.status == 429
            page.get_by_text("Too many failed sign-ins").wait_for()
            assert page.get_by_text("Wrong user name or password").count() == 0
        finally:
            browser.close()
