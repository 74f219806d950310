"""Call leases, on both result stores: a claim is exclusive while live, an expired one is taken over,
renewal keeps it, and storing the result (or releasing the claim) ends it."""

from __future__ import annotations

import asyncio

import pytest

from bus import MemoryResultStore, ResultStore
from storage import Database, PostgresResultStore


@pytest.fixture(params=["memory", "postgres"])
def stores(request: pytest.FixtureRequest, db: Database) -> ResultStore:
    return MemoryResultStore() if request.param == "memory" else PostgresResultStore(db.sessionmaker)


async def test_a_live_lease_is_exclusive_and_an_expired_one_is_taken_over(stores: ResultStore) -> None:
    first = await stores.claim("k1", "jobs_run", "worker-a", 0.5)
    assert first.ours and not first.taken_over

    held = await stores.claim("k1", "jobs_run", "worker-b", 0.5)
    assert not held.ours and 0 < held.wait <= 0.5

    again = await stores.claim("k1", "jobs_run", "worker-a", 0.5)  # its own holder may claim again
    assert again.ours and not again.taken_over

    await asyncio.sleep(0.6)
    taken = await stores.claim("k1", "jobs_run", "worker-b", 5)
    assert taken.ours and taken.taken_over
    assert not await stores.renew("k1", "worker-a", 5)  # no longer worker-a's
    assert not (await stores.claim("k1", "jobs_run", "worker-a", 5)).ours


async def test_renewal_keeps_a_lease_past_its_length(stores: ResultStore) -> None:
    assert (await stores.claim("k2", "jobs_run", "worker-a", 0.4)).ours
    for _ in range(3):
        await asyncio.sleep(0.2)
        assert await stores.renew("k2", "worker-a", 0.4)
    assert not (await stores.claim("k2", "jobs_run", "worker-b", 0.4)).ours


async def test_a_stored_result_ends_the_lease_and_answers_every_later_claim(stores: ResultStore) -> None:
    assert (await stores.claim("k3", "jobs_run", "worker-a", 30)).ours
    result = {"call_id": "c3", "result": {"content": []}}
    await stores.put("k3", "jobs_run", result)
    later = await stores.claim("k3", "jobs_run", "worker-b", 30)
    assert later.stored == result and not later.ours


async def test_releasing_ends_only_the_holders_own_lease(stores: ResultStore) -> None:
    assert (await stores.claim("k4", "jobs_run", "worker-a", 30)).ours
    await stores.release("k4", "worker-b")  # not worker-b's: nothing happens
    assert not (await stores.claim("k4", "jobs_run", "worker-c", 30)).ours
    await stores.release("k4", "worker-a")
    fresh = await stores.claim("k4", "jobs_run", "worker-c", 30)
    assert fresh.ours and not fresh.taken_over  # a released lease is no sign of a cut-off call
