"""The scheduler's firing loop: a front door that claims due occurrences and runs each as a turn.

A scheduled run takes the path of a manual one: a ``Turn`` of the schedule's owner, with the role they
had when they created it, in the schedule's channel and thread, through ``Kommandant.handle`` (policy,
approvals, audit). The turn brings its command understood (the schedule's stored intents) and the
occurrence as its idempotency key. Any number of these loops may run on one database: claiming
(``ScheduleRepository.claim_due``) gives each occurrence to exactly one of them.

The loop sleeps until the soonest next run (at most ``MAX_SLEEP`` seconds, for schedules other
processes change without telling), and wakes early on a ``schedules.changed`` event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from agents.scheduler import CHANGED, next_time
from assistant.events import ApprovalResolved, Failed, ReplyDone, Role, ToolFinished, Turn
from assistant.kommandant import Kommandant
from bus import Subscription
from intents import IntentMatch
from storage.schedules import ClaimedRun, ScheduleRepository

log = logging.getLogger(__name__)

MAX_SLEEP = 30.0
"""Longest sleep between claims when nothing says a schedule changed."""
RETRY_SLEEP = 1.0
"""Sleep after a failed claim (the database blipped)."""
STOP_GRACE = 5.0
"""Seconds a stopping scheduler waits for its runs under way (one waiting for an approval is cut off)."""


def occurrence_key(claimed: ClaimedRun) -> str:
    """The idempotency key of one occurrence: a redelivered or repeated call of it never acts twice."""
    return f"schedule:{claimed.schedule.id}:{claimed.run.due_at.isoformat()}"


def scheduled_turn(claimed: ClaimedRun) -> Turn:
    """The turn a claimed run makes: its owner, their role at creation, its channel and thread."""
    schedule = claimed.schedule
    intents = tuple(
        IntentMatch(
            tool=i["tool"], arguments=dict(i.get("arguments") or {}), confidence=1.0, text=schedule.target
        )
        for i in schedule.intents
    )
    return Turn(
        text=schedule.target,
        user=schedule.owner,
        channel=schedule.channel,
        thread=schedule.thread_id,
        role=cast(Role, schedule.owner_role),
        intents=intents,
        idempotency_key=occurrence_key(claimed),
        llm_model="",  # a schedule's command is understood already: never ask the LLM
    )


class Scheduler:
    """``async with Scheduler(kommandant):`` fires due schedules until the block ends.

    ``global_limit``: most runs under way at once over every scheduler (default: the
    ``scheduler_concurrency`` setting). ``max_sleep``: longest wait between claims.
    """

    def __init__(
        self, kommandant: Kommandant, *, global_limit: int | None = None, max_sleep: float = MAX_SLEEP
    ) -> None:
        self.kommandant = kommandant
        services = kommandant.services
        self.services = services
        self.schedules = ScheduleRepository(services.database.sessionmaker)
        self.global_limit = global_limit or services.settings.scheduler_concurrency
        self.max_sleep = max_sleep
        # a run older than any call and approval can take belonged to a scheduler that stopped
        self.stale_after = timedelta(
            seconds=services.settings.approval_ttl + services.settings.call_timeout * 2 + 60
        )
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[str]] = set()
        self._loop: asyncio.Task[None] | None = None
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Scheduler:
        changed = await self._stack.enter_async_context(self.services.bus.subscribe(CHANGED))
        listener = asyncio.create_task(self._listen(changed), name="scheduler-changed")
        self._stack.push_async_callback(_cancel, listener)
        self._loop = asyncio.create_task(self._fire_forever(), name="scheduler-loop")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._loop is not None:
            await _cancel(self._loop)
            self._loop = None
        if self._tasks:  # runs under way get a moment to finish and be recorded
            await asyncio.wait(list(self._tasks), timeout=STOP_GRACE)
        for task in list(self._tasks):  # the rest stay 'running' and become 'lost' later
            await _cancel(task)
        await self._stack.aclose()

    def wake(self) -> None:
        """Claim now instead of at the next planned wake-up."""
        self._wake.set()

    async def fire_due(self) -> list[ClaimedRun]:
        """Claim what is due now and start running each claimed occurrence; return them."""
        claimed = await self.schedules.claim_due(
            next_time, global_limit=self.global_limit, stale_after=self.stale_after
        )
        for run in claimed:
            task = asyncio.create_task(self.run(run), name=f"scheduled-{run.run.id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return claimed

    async def run(self, claimed: ClaimedRun) -> str:
        """Run one claimed occurrence as a turn and record how it ended: ok, failed, rejected or expired."""
        status, reply, error = "ok", "", None
        try:
            async for event in self.kommandant.handle(scheduled_turn(claimed)):
                if isinstance(event, ApprovalResolved) and event.status != "approved":
                    status = "expired" if event.status == "expired" else "rejected"
                elif isinstance(event, ToolFinished) and not event.ok and status == "ok":
                    status, error = "failed", event.text
                elif isinstance(event, Failed) and status == "ok":
                    status, error = "failed", event.message
                elif isinstance(event, ReplyDone):
                    reply = event.text
        except Exception as err:  # handle() never raises for bad input; this is a bug or a lost database
            log.exception("scheduled run %s failed", claimed.run.id)
            status, error = "failed", f"{type(err).__name__}: the log has the details"
        kept = await self.schedules.finish(claimed.run.id, status, reply=reply, error=error)
        schedule = claimed.schedule
        await self.services.audit.append(
            "scheduled_run",
            actor="scheduler",
            owner=schedule.owner,
            channel=schedule.channel,
            thread_id=schedule.thread_id,
            data={
                "schedule": schedule.name,
                "run": str(claimed.run.id),
                "due": claimed.run.due_at.isoformat(),
                "status": status if kept else f"{status} (schedule deleted meanwhile)",
            },
        )
        return status

    async def _fire_forever(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.fire_due()
                soonest = await self.schedules.next_due()
                wait = self.max_sleep
                if soonest is not None:
                    wait = min(wait, max(0.0, (soonest - datetime.now(UTC)).total_seconds()))
            except Exception:  # the database may blip; try again soon
                log.warning("claiming due schedules failed", exc_info=True)
                wait = RETRY_SLEEP
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)

    async def _listen(self, changed: Subscription) -> None:
        async for _event in changed:
            self._wake.set()


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
