"""Approvals bound to a live request, on both buses: a requester that stopped waiting (its turn was
cancelled, as when a browser or an MCP client goes away) gets the approved call run detached, once, with
the result sent to its channel's topic and thread; a rejected one runs nothing; a waiting requester runs
the call in its own turn."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agents import approval_result_topic
from assistant.events import ApprovalRequired, ReplyDone, ToolFinished, Turn
from assistant.runtime import Runtime
from bus import Subscription
from storage.approvals import ApprovalRepository
from storage.audit import AuditEntry

OTTO = {"user": "otto", "channel": "web", "thread": "thread-otto-1", "role": "operator"}


async def say(rt: Runtime, text: str, **who: Any) -> list[Any]:
    assert rt.kommandant is not None
    return [e async for e in rt.kommandant.handle(Turn(text=text, **{**OTTO, **who}))]


def reply(events: list[Any]) -> str:
    [done] = [e for e in events if isinstance(e, ReplyDone)]
    return done.text


async def ask(rt: Runtime, text: str) -> tuple[asyncio.Task[list[Any]], ApprovalRequired]:
    """Otto asks for a dangerous call in the background: the turn's task, and its approval request."""
    assert rt.kommandant is not None
    kommandant = rt.kommandant
    asked: asyncio.Future[ApprovalRequired] = asyncio.get_running_loop().create_future()

    async def run() -> list[Any]:
        seen = []
        async for event in kommandant.handle(Turn(text=text, **OTTO)):  # type: ignore[arg-type]
            seen.append(event)
            if isinstance(event, ApprovalRequired):
                asked.set_result(event)
        return seen

    task = asyncio.create_task(run())
    return task, await asyncio.wait_for(asked, 10)


async def ask_then_leave(rt: Runtime, text: str) -> ApprovalRequired:
    """Otto asks and disconnects while the call waits (the turn's task is cancelled)."""
    task, approval = await ask(rt, text)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return approval


def approvals(rt: Runtime) -> ApprovalRepository:
    assert rt.services is not None
    return ApprovalRepository(rt.services.database.sessionmaker)


async def rows(rt: Runtime, kind: str) -> list[AuditEntry]:
    assert rt.services is not None
    return await rt.services.audit.tail(200, kind=kind)


async def no_event(results: Subscription, seconds: float = 1.5) -> None:
    try:
        extra = await results.get(timeout=seconds)
    except TimeoutError:
        return
    raise AssertionError(f"an unexpected result event: {extra.payload}")


async def test_approved_after_the_requester_left_runs_detached_once(runtime: Runtime) -> None:
    assert runtime.kommandant is not None and runtime.services is not None
    assert "neovim" in reply(await say(runtime, "remember that my editor is neovim"))
    approval = await ask_then_leave(runtime, "forget my editor")
    record = await approvals(runtime).get(approval.approval_id)
    assert record.status == "pending" and not record.requester_waiting, "the cancelled turn still waits"
    assert record.requester_role == "operator"

    # The approver sees that nobody waits and where the result will go.
    listed = await say(runtime, "show pending approvals", user="root", role="admin", thread=None)
    [finished] = [e for e in listed if isinstance(e, ToolFinished)]
    assert finished.structured is not None
    [shown] = finished.structured["approvals"]
    assert shown["requester_waiting"] is False
    assert "the requester left; the result will be sent to their web chat thread" in reply(listed)

    async with runtime.services.bus.subscribe(approval_result_topic("web")) as results:
        done = await runtime.kommandant.decide(
            approval.approval_id, approve=True, user="root", role="admin", channel="cli"
        )
        assert "had left" in done.text and "web chat thread" in done.text, done.text
        assert "neovim" not in done.text, "the approver saw the requester's private result"
        event = await results.get(timeout=10)
        assert event.payload["approval"] == approval.approval_id
        assert (event.payload["user"], event.payload["thread"]) == ("otto", "thread-otto-1")
        assert event.payload["tool"] == "memory_forget" and event.payload["ok"] is True
        assert "neovim" in event.payload["text"]
        await no_event(results)

    assert "neovim" not in reply(await say(runtime, "what is my editor")).lower()
    calls = [r for r in await rows(runtime, "tool_call") if r.tool == "memory_forget"]
    assert len(calls) == 1, "the approved call ran more than once"
    assert (calls[0].actor, calls[0].channel, calls[0].thread_id) == ("otto", "web", "thread-otto-1")
    [sent] = await rows(runtime, "approval_result_sent")
    assert sent.actor == "otto" and sent.data["approval"] == approval.approval_id
    assert sent.data["ok"] is True and sent.data["topic"] == "approvals.result.web"
    assert sent.data["call"] == calls[0].data["call"]
    [decided] = await rows(runtime, "approval_decided")
    assert decided.data["requester_waiting"] is False
    assert (await approvals(runtime).get(approval.approval_id)).runner == "detached"
    assert (await runtime.services.audit.verify()).ok


async def test_rejected_after_the_requester_left_runs_nothing(runtime: Runtime) -> None:
    assert runtime.kommandant is not None and runtime.services is not None
    await say(runtime, "remember that my shell is fish")
    approval = await ask_then_leave(runtime, "forget my shell")
    async with runtime.services.bus.subscribe(approval_result_topic("web")) as results:
        done = await runtime.kommandant.decide(
            approval.approval_id, approve=False, user="root", role="admin", channel="cli"
        )
        assert "Rejected" in done.text
        await no_event(results)
    assert not [r for r in await rows(runtime, "tool_call") if r.tool == "memory_forget"]
    assert await rows(runtime, "approval_result_sent") == []
    assert "fish" in reply(await say(runtime, "what is my shell")).lower()


async def test_a_waiting_requester_runs_the_call_in_its_own_turn(runtime: Runtime) -> None:
    assert runtime.kommandant is not None and runtime.services is not None
    kommandant = runtime.kommandant
    await say(runtime, "remember that my pager is less")
    task, approval = await ask(runtime, "forget my pager")
    assert (await approvals(runtime).get(approval.approval_id)).requester_waiting
    listed = await say(runtime, "show pending approvals", user="root", role="admin", thread=None)
    assert "the requester is waiting" in reply(listed)
    async with runtime.services.bus.subscribe(approval_result_topic("web")) as results:
        done = await kommandant.decide(
            approval.approval_id, approve=True, user="root", role="admin", channel="cli"
        )
        assert "The requester is waiting" in done.text, done.text
        seen = await asyncio.wait_for(task, 15)
        await no_event(results, 0.5)
    [finished] = [e for e in seen if isinstance(e, ToolFinished)]
    assert finished.tool == "memory_forget" and finished.ok and "less" in finished.text
    assert (await approvals(runtime).get(approval.approval_id)).runner == "requester"
    assert await rows(runtime, "approval_result_sent") == []


async def test_a_requester_that_died_without_a_word_is_run_for_once_its_mark_lapses(runtime: Runtime) -> None:
    """A process killed outright never releases its mark: the approval is decided as waited for, and once
    the mark lapses unrenewed the call runs detached, once."""
    assert runtime.kommandant is not None and runtime.services is not None
    await say(runtime, "remember that my font is iosevka")
    approval = await ask_then_leave(runtime, "forget my font")
    await approvals(runtime).renew(approval.approval_id, alive_for=1.0)  # as if it had never let go
    async with runtime.services.bus.subscribe(approval_result_topic("web")) as results:
        done = await runtime.kommandant.decide(
            approval.approval_id, approve=True, user="root", role="admin", channel="cli"
        )
        assert "The requester is waiting" in done.text, done.text
        event = await results.get(timeout=10)
        assert event.payload["ok"] is True and "iosevka" in event.payload["text"]
        await no_event(results)
    assert len([r for r in await rows(runtime, "tool_call") if r.tool == "memory_forget"]) == 1
    assert (await approvals(runtime).get(approval.approval_id)).runner == "detached"


async def test_a_role_that_may_not_run_it_is_refused_even_when_approved(runtime: Runtime) -> None:
    """The detached call runs with the requester's role as stored at request time and passes policy again:
    an approval stored without a role (before this revision) counts as a viewer's and runs nothing."""
    assert runtime.kommandant is not None and runtime.services is not None
    await say(runtime, "remember that my color is teal")
    approval = await ask_then_leave(runtime, "forget my color")
    from sqlalchemy import update

    from storage.models import Approval

    async with runtime.services.database.sessionmaker() as session, session.begin():
        await session.execute(update(Approval).values(requester_role="viewer"))
    async with runtime.services.bus.subscribe(approval_result_topic("web")) as results:
        await runtime.kommandant.decide(
            approval.approval_id, approve=True, user="root", role="admin", channel="cli"
        )
        event = await results.get(timeout=10)
    assert event.payload["ok"] is False and "viewer" in event.payload["text"]
    assert not [r for r in await rows(runtime, "tool_call") if r.tool == "memory_forget"]
    assert [r.tool for r in await rows(runtime, "refused")] == ["memory_forget"]
    assert "teal" in reply(await say(runtime, "what is my color")).lower()
    assert (await approvals(runtime).get(approval.approval_id)).runner == "detached"
