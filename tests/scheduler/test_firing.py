"""Schedules fire through the Kommandant on both buses: made by saying so, run as their owner with the
owner's role, recorded in their history; disabled ones never run; a dangerous command waits for approval."""

from __future__ import annotations

import asyncio

from agents import BUILTIN_AGENTS
from assistant.events import ReplyDone, Turn
from assistant.runtime import Runtime
from settings import Settings
from storage import Database
from tests.bus.conftest import eventually
from tests.scheduler.conftest import create_schedule, execute, rows


async def say(rt: Runtime, text: str, *, user: str = "ann", role: str = "operator") -> list[object]:
    assert rt.kommandant is not None
    turn = Turn(text=text, user=user, channel="test", role=role)  # type: ignore[arg-type]
    return [event async for event in rt.kommandant.handle(turn)]


async def test_a_spoken_schedule_runs_as_its_owner(db: Database, bus_settings: Settings) -> None:
    async with Runtime(bus_settings, agents=list(BUILTIN_AGENTS), database=db, scheduler=True) as rt:
        events = await say(rt, "every 2 seconds show the status")
        assert isinstance(events[-1], ReplyDone) and events[-1].text.startswith("Scheduled ("), events[-1]
        (schedule,) = await rows(
            db, "SELECT name, intents, owner, owner_role, timezone, next_run_at FROM schedules"
        )
        assert schedule.intents == [{"tool": "system_status", "arguments": {}}]
        assert (schedule.owner, schedule.owner_role, schedule.timezone) == ("ann", "operator", "UTC")
        runs = await eventually(
            lambda: rows(db, "SELECT status, trigger FROM scheduled_runs WHERE status = 'ok'"), seconds=10
        )
        assert runs[0].trigger == "schedule"
        turns = await rows(
            db, "SELECT actor FROM audit_log WHERE kind = 'tool_call' AND tool = 'system_status'"
        )
        assert turns and {t.actor for t in turns} == {"ann"}
        listed = await say(rt, "list the schedules")
        assert schedule.name in listed[-1].text  # type: ignore[attr-defined]
        history = await say(rt, f"show the history of the {schedule.name} schedule")
        assert " ok" in history[-1].text  # type: ignore[attr-defined]


async def test_a_schedule_of_an_unknown_or_forbidden_command_is_refused(
    db: Database, settings: Settings
) -> None:
    async with Runtime(settings, agents=list(BUILTIN_AGENTS), database=db) as rt:
        unknown = await say(rt, "schedule frobnicate the wibble every day at 9")
        assert "as a command" in unknown[-1].text  # type: ignore[attr-defined]
        viewer = await say(rt, "every day at 9 delete the backup schedule", user="vic", role="viewer")
        assert "may not" in viewer[-1].text  # type: ignore[attr-defined]
    assert await rows(db, "SELECT id FROM schedules") == []


async def test_disabled_schedules_never_run(db: Database, bus_settings: Settings) -> None:
    async with Runtime(bus_settings, agents=list(BUILTIN_AGENTS), database=db, scheduler=True) as rt:
        assert rt.services is not None
        off = await create_schedule(rt.services.bus, name="off", when={"every_seconds": 1})
        on = await create_schedule(rt.services.bus, name="on", when={"every_seconds": 1})
        paused = await say(rt, "pause the off schedule")
        assert "(disabled)" in paused[-1].text  # type: ignore[attr-defined]
        await eventually(
            lambda: rows(
                db,
                "SELECT 1 FROM scheduled_runs r JOIN schedules s ON s.id = r.schedule_id"
                " WHERE s.name = 'on' AND r.status = 'ok' OFFSET 1",
            ),
            seconds=10,
        )
        await asyncio.sleep(1.5)
    ran = await rows(db, "SELECT s.name FROM scheduled_runs r JOIN schedules s ON s.id = r.schedule_id")
    assert {r.name for r in ran} == {on["name"]}, off


async def test_a_dangerous_scheduled_command_waits_for_approval(db: Database, bus_settings: Settings) -> None:
    configured = bus_settings.model_copy(update={"approval_ttl": 30.0})
    async with Runtime(configured, agents=list(BUILTIN_AGENTS), database=db, scheduler=True) as rt:
        assert rt.services is not None
        await create_schedule(rt.services.bus, name="victim", when={"cron": "0 0 1 1 *"})
        events = await say(rt, "every day at 9 delete the victim schedule")
        assert events[-1].text.startswith("Scheduled ("), events[-1]  # type: ignore[attr-defined]
        # due a second from now instead of at 9 (the clock of the database, not a fake one)
        await execute(
            db, "UPDATE schedules SET next_run_at = now() + interval '1 second' WHERE name != 'victim'"
        )
        assert rt.scheduler is not None
        rt.scheduler.wake()
        pending = await eventually(
            lambda: rows(db, "SELECT id, channel, requested_by FROM approvals WHERE status = 'pending'"), 10
        )
        assert (pending[0].channel, pending[0].requested_by) == ("test", "ann")
        await asyncio.sleep(1.0)
        assert await rows(db, "SELECT name FROM schedules WHERE name = 'victim'"), "ran before approval"
        assert rt.kommandant is not None
        decided = await rt.kommandant.decide(
            str(pending[0].id), approve=True, user="root", role="admin", channel="test"
        )
        assert "approved" in decided.text.lower(), decided
        await eventually(
            lambda: rows(db, "SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM schedules WHERE name = 'victim')"), 10
        )
        run = await eventually(
            lambda: rows(db, "SELECT status FROM scheduled_runs WHERE status != 'running'"), 10
        )
        assert run[0].status == "ok"


async def test_run_now_and_a_one_shot(db: Database, bus_settings: Settings) -> None:
    async with Runtime(bus_settings, agents=list(BUILTIN_AGENTS), database=db, scheduler=True) as rt:
        events = await say(rt, "schedule show the status tomorrow at 7")
        assert events[-1].text.startswith("Scheduled ("), events[-1]  # type: ignore[attr-defined]
        (once,) = await rows(db, "SELECT name, run_at, next_run_at, every_seconds, cron FROM schedules")
        assert once.run_at == once.next_run_at and once.every_seconds is None and once.cron is None
        ran = await say(rt, f"run the {once.name} schedule now")
        assert ran[-1].text == f"Running the {once.name} schedule now.", ran[-1]  # type: ignore[attr-defined]
        run = await eventually(
            lambda: rows(db, "SELECT status, trigger FROM scheduled_runs WHERE status = 'ok'"), 10
        )
        assert run[0].trigger == "manual"
        (after,) = await rows(db, "SELECT next_run_at, last_run_at FROM schedules")
        assert after.next_run_at == once.next_run_at and after.last_run_at is not None


async def test_an_unapproved_scheduled_command_expires_and_is_recorded(
    db: Database, bus_settings: Settings
) -> None:
    configured = bus_settings.model_copy(update={"approval_ttl": 1.0})
    async with Runtime(configured, agents=list(BUILTIN_AGENTS), database=db, scheduler=True) as rt:
        assert rt.services is not None and rt.scheduler is not None
        await create_schedule(rt.services.bus, name="victim", when={"cron": "0 0 1 1 *"})
        await say(rt, "every day at 9 delete the victim schedule")
        await execute(db, "UPDATE schedules SET next_run_at = now() WHERE name != 'victim'")
        rt.scheduler.wake()
        run = await eventually(
            lambda: rows(db, "SELECT status, result FROM scheduled_runs WHERE status != 'running'"), 15
        )
    assert run[0].status == "expired" and "approval was expired" in run[0].result["reply"]
    assert await rows(db, "SELECT name FROM schedules WHERE name = 'victim'")
    assert await rows(db, "SELECT seq FROM audit_log WHERE kind = 'approval_expired' AND actor = 'ann'")


async def test_a_command_with_private_words_is_not_scheduled_and_stays_out_of_the_audit(
    db: Database, settings: Settings
) -> None:
    async with Runtime(settings, agents=list(BUILTIN_AGENTS), database=db) as rt:
        events = await say(rt, "every day at 9 remember that my bank pin is 8642")
        assert "private" in events[-1].text  # type: ignore[attr-defined]
        assert "8642" not in events[-1].text  # type: ignore[attr-defined]
    assert await rows(db, "SELECT id FROM schedules") == []
    audited = await rows(db, "SELECT kind, data::text AS data FROM audit_log")
    assert {row.kind for row in audited} >= {"turn", "intent"}
    assert not [row for row in audited if "8642" in row.data]
