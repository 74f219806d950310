"""Claiming occurrences on real Postgres with fixed clocks: each occurrence once however many claim at
once; misfire policies after downtime; concurrency limits; listing changes nothing; deleting mid-run."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agents.scheduler import next_time
from storage import Database
from storage.schedules import ScheduleRecord, ScheduleRepository
from tests.scheduler.conftest import TICK, rows

T0 = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


async def make(repo: ScheduleRepository, name: str, **values: Any) -> ScheduleRecord:
    defaults: dict[str, Any] = {
        "target": "note a tick",
        "timezone": "UTC",
        "owner": "ann",
        "owner_role": "operator",
        "channel": "test",
        "enabled": True,
        "intents": [TICK],
        "every_seconds": 10,
        "next_run_at": T0,
    }
    return await repo.create(name=name, **{**defaults, **values})


async def test_concurrent_claimers_get_each_occurrence_once(db: Database) -> None:
    repo = ScheduleRepository(db.sessionmaker)
    for i in range(5):
        await make(repo, f"s{i}", every_seconds=1 + i, concurrency=100, grace_seconds=3600)
    won: list[tuple[str, datetime]] = []
    for step in range(30):  # 30 s of ticks, eight claimers racing on each
        now = T0 + timedelta(seconds=step)
        batches = await asyncio.gather(
            *(
                ScheduleRepository(db.sessionmaker).claim_due(next_time, now=now, global_limit=10_000)
                for _ in range(8)
            )
        )
        won += [(c.schedule.name, c.run.due_at) for batch in batches for c in batch]
        for batch in batches:
            for claimed in batch:
                await repo.finish(claimed.run.id, "ok")
    assert len(won) == len(set(won))
    expected = sum(len(range(0, 30, 1 + i)) for i in range(5))
    assert len(won) == expected
    assert len(await rows(db, "SELECT id FROM scheduled_runs WHERE status = 'ok'")) == expected


@pytest.mark.parametrize(
    ("misfire", "expected"),
    [
        # down from T0 to T0+35 s with a 10 s interval: T0, +10, +20, +30 were missed, +30 is within grace
        ("once", {"catch-up": [], "schedule": [30], "skipped: misfire": [0, 10, 20]}),
        ("all", {"catch-up": [0, 10, 20], "schedule": [30], "skipped: misfire": []}),
        ("skip", {"catch-up": [], "schedule": [30], "skipped: misfire": [0, 10, 20]}),
    ],
)
async def test_misfire_policy_within_and_beyond_the_grace_window(
    db: Database, misfire: str, expected: dict[str, list[int]]
) -> None:
    repo = ScheduleRepository(db.sessionmaker)
    await make(repo, "late", misfire=misfire, grace_seconds=6, concurrency=10)
    claimed = await repo.claim_due(next_time, now=T0 + timedelta(seconds=35))
    runs = await repo.runs()
    seen: dict[str, list[int]] = {"catch-up": [], "schedule": [], "skipped: misfire": []}
    for run in runs:
        key = run.status if run.status == "skipped: misfire" else run.trigger
        seen[key].append(int((run.due_at - T0).total_seconds()))
    assert seen == expected
    assert sorted(c.run.due_at for c in claimed) == [
        T0 + timedelta(seconds=s) for s in expected["catch-up"] + expected["schedule"]
    ]
    (schedule,) = await repo.listing()
    assert schedule.next_run_at == T0 + timedelta(seconds=40)


async def test_missed_beyond_grace_with_nothing_on_time_runs_once(db: Database) -> None:
    repo = ScheduleRepository(db.sessionmaker)
    await make(repo, "late", misfire="once", grace_seconds=1)
    claimed = await repo.claim_due(next_time, now=T0 + timedelta(seconds=25))
    assert [(c.run.due_at, c.run.trigger) for c in claimed] == [(T0 + timedelta(seconds=20), "catch-up")]
    assert [r.status for r in await repo.runs()] == ["skipped: misfire", "skipped: misfire", "running"]


async def test_concurrency_limits_per_schedule_and_global(db: Database) -> None:
    repo = ScheduleRepository(db.sessionmaker)
    await make(repo, "a", every_seconds=1, concurrency=1)
    await make(repo, "b", every_seconds=1, concurrency=2)
    first = await repo.claim_due(next_time, now=T0, global_limit=2)
    assert sorted(c.schedule.name for c in first) == ["a", "b"]
    second = await repo.claim_due(next_time, now=T0 + timedelta(seconds=1), global_limit=2)
    assert second == []  # both limits hold while the first runs are under way
    statuses = [(r.schedule_id, r.status) for r in await repo.runs()]
    assert [s for _, s in statuses].count("skipped: concurrency") == 2
    for claimed in first:
        await repo.finish(claimed.run.id, "ok")
    third = await repo.claim_due(next_time, now=T0 + timedelta(seconds=2), global_limit=2)
    assert sorted(c.schedule.name for c in third) == ["a", "b"]


async def test_runs_of_a_stopped_scheduler_become_lost(db: Database) -> None:
    repo = ScheduleRepository(db.sessionmaker)
    await make(repo, "a", every_seconds=60, concurrency=1)
    (claimed,) = await repo.claim_due(next_time, now=T0)
    later = T0 + timedelta(seconds=60)
    assert await repo.claim_due(next_time, now=later, stale_after=timedelta(seconds=120)) == []
    again = await repo.claim_due(
        next_time, now=T0 + timedelta(seconds=180), stale_after=timedelta(seconds=120)
    )
    assert len(again) == 1
    assert (await repo.history("a"))[-1].status == "lost"
    assert await repo.finish(claimed.run.id, "ok") is False  # the lost run stays lost


async def test_disabled_schedules_are_never_claimed_and_listing_changes_nothing(db: Database) -> None:
    repo = ScheduleRepository(db.sessionmaker)
    await make(repo, "off", enabled=False)
    await make(repo, "on", next_run_at=T0 + timedelta(hours=1))
    before = {s.name: s.next_run_at for s in await repo.listing()}
    for _ in range(3):
        await repo.listing()
        await repo.get("on")
        await repo.history("on")
    assert {s.name: s.next_run_at for s in await repo.listing()} == before
    assert await repo.claim_due(next_time, now=T0 + timedelta(minutes=5)) == []
    assert await repo.runs() == []
    enabled = await repo.set_enabled("off", None, True, lambda s: T0 + timedelta(days=1))
    assert enabled.next_run_at == T0 + timedelta(days=1)  # the paused times are not run


async def test_deleting_a_schedule_mid_run_leaves_a_clean_history(db: Database) -> None:
    repo = ScheduleRepository(db.sessionmaker)
    await make(repo, "doomed", every_seconds=1)
    (claimed,) = await repo.claim_due(next_time, now=T0)
    await repo.delete("doomed")
    assert await repo.finish(claimed.run.id, "ok") is False
    assert await rows(db, "SELECT id FROM scheduled_runs") == []
    assert await repo.claim_due(next_time, now=T0 + timedelta(seconds=5)) == []


async def test_a_run_by_hand_is_queued_and_claimed_once(db: Database) -> None:
    repo = ScheduleRepository(db.sessionmaker)
    await make(repo, "manual", next_run_at=None, run_at=T0 + timedelta(days=9), every_seconds=None)
    queued = await repo.queue_run("manual", "ann", now=T0)
    assert queued.status == "queued"
    batches = await asyncio.gather(*(repo.claim_due(next_time, now=T0) for _ in range(4)))
    assert [c.run.id for batch in batches for c in batch] == [queued.id]
    with pytest.raises(Exception, match="no schedule called"):
        await repo.queue_run("manual", "bob")  # not bob's
