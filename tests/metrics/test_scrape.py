"""``/metrics`` after 200 real turns: it parses with prometheus_client's parser, its counters agree with
the audit trail row for row, its gauges come from Postgres and the bus, and no label names a person."""

from __future__ import annotations

import asyncio
from collections import Counter

from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from assistant.events import Turn
from assistant.runtime import Runtime
from assistant.web.metrics import render
from storage.models import AuditRow
from tests.metrics.conftest import AGENTS, samples, total

SENTENCES = [
    "list my reminders",
    "status",
    "show the audit log",
    "remind me to stretch in ten minutes",
    "show my schedules",
    "list pending approvals",
    "show the history of schedule nightly",  # no such schedule: an error result
    "approve 123",  # no such approval: an error result
]
USERS = ["ann-metrics", "bob-metrics"]
TURNS = 200


async def _scrape(rt: Runtime) -> str:
    return (await render(rt.services)).decode()


async def test_counters_match_the_audit_trail_after_200_turns(runtime: Runtime) -> None:
    assert runtime.kommandant is not None and runtime.services is not None
    before = samples(await _scrape(runtime))
    kommandant, slots = runtime.kommandant, asyncio.Semaphore(8)

    async def one(i: int) -> None:  # eight at a time, as several people would: counting must not race
        turn = Turn(text=SENTENCES[i % len(SENTENCES)], user=USERS[i % 2], channel="cli", role="admin")
        async with slots:
            async for _ in kommandant.handle(turn):
                pass

    await asyncio.gather(*(one(i) for i in range(TURNS)))
    text = await _scrape(runtime)
    after = samples(text)

    async with runtime.services.database.sessionmaker() as session:
        rows = (await session.execute(select(AuditRow.kind, AuditRow.tool, AuditRow.data))).all()
    audited = Counter(
        (tool, "ok" if data["ok"] else "error") for kind, tool, data in rows if kind == "tool_result"
    )
    assert sum(audited.values()) == TURNS  # each sentence runs one tool
    assert {outcome for _, outcome in audited} == {"ok", "error"}

    def delta(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    counted = {
        key: delta("kommandant_tool_calls_total", tool=key[0], outcome=key[1])
        for key in {*audited, *((t, o) for t in {t for t, _ in audited} for o in ("ok", "error"))}
    }
    assert {k: v for k, v in counted.items() if v} == dict(audited)
    assert delta("kommandant_turns_total", channel="cli") == sum(1 for kind, _, _ in rows if kind == "turn")
    assert delta("kommandant_turns_total", channel="cli", outcome="failed") == sum(
        n for (_, outcome), n in audited.items() if outcome == "error"
    )
    assert delta("kommandant_turn_seconds_count", channel="cli") == TURNS
    assert delta("kommandant_tool_call_seconds_count") == TURNS
    # the in-process workers served each call once, with the outcome the Kommandant saw
    for (tool, outcome), n in audited.items():
        assert delta("kommandant_worker_calls_total", tool=tool, outcome=outcome) == n

    # OpenMetrics (what Prometheus asks for) carries the latest call id per latency bucket as an exemplar
    openmetrics = (await render(runtime.services, openmetrics=True)).decode()
    exemplars = {
        s.exemplar.labels["call"]
        for family in openmetrics_families(openmetrics)
        if family.name == "kommandant_tool_call_seconds"
        for s in family.samples
        if s.exemplar is not None
    }
    assert exemplars & {data["call"] for kind, _, data in rows if kind == "tool_result"}

    families = list(text_string_to_metric_families(text))
    ours = [f for f in families if f.name.startswith("kommandant_")]
    assert {f.name for f in ours} >= {
        "kommandant_turns",
        "kommandant_turn_seconds",
        "kommandant_tool_calls",
        "kommandant_tool_call_seconds",
        "kommandant_worker_calls",
        "kommandant_worker_call_seconds",
        "kommandant_transcriptions",
        "kommandant_transcription_seconds",
        "kommandant_queue_depth",
        "kommandant_dead_letters",
        "kommandant_agent_heartbeat_age_seconds",
        "kommandant_agent_instances",
        "kommandant_bots_running",
        "kommandant_approvals_pending",
    }
    for family in ours:
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples), family.name
        if family.type == "histogram":
            assert family.name.endswith("_seconds"), family.name
        for sample in family.samples:
            assert not {"user", "user_id", "actor", "requested_by"} & set(sample.labels), sample
            assert not set(USERS) & set(sample.labels.values()), sample


async def test_gauges_are_read_from_postgres_and_the_bus_at_scrape_time(runtime: Runtime) -> None:
    assert runtime.kommandant is not None
    found = samples(await _scrape(runtime))
    assert total(found, "kommandant_scrape_source_up", source="postgres") == 1
    assert total(found, "kommandant_scrape_source_up", source="bus") == 1
    assert total(found, "kommandant_approvals_pending") == 0
    for agent in AGENTS:
        assert total(found, "kommandant_agent_instances", agent=agent) == 1
        assert 0 <= total(found, "kommandant_agent_heartbeat_age_seconds", agent=agent) < 5
        assert ("kommandant_queue_depth", (("agent", agent),)) in found
        assert total(found, "kommandant_dead_letters", agent=agent) == 0

    await runtime.kommandant.approvals.request(
        "schedules_delete", {"name": "x"}, requested_by="ann-metrics", channel="cli", thread_id=None, ttl=60
    )
    assert total(samples(await _scrape(runtime)), "kommandant_approvals_pending") == 1


async def test_a_scrape_while_starting_answers_with_its_sources_down() -> None:
    found = samples((await render(None)).decode())
    assert total(found, "kommandant_scrape_source_up", source="postgres") == 0
    assert total(found, "kommandant_scrape_source_up", source="bus") == 0
    assert ("kommandant_agent_instances", ()) not in found
