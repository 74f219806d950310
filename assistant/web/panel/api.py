"""The control panel API under ``/api``: views through read tools, actions through ``Kommandant.run_tool``,
turns through ``Kommandant.handle``: the same policy, per-user visibility and audit as the chat.

Each route names the role it needs (401 without a credential, 403 below it): reading needs a viewer,
a write tool an operator, a dangerous tool (stopping a bot, deleting a schedule), deciding approvals,
the dead-letter queue and verifying the audit trail an admin. A dangerous tool then still waits for a
person's approval, as everywhere: the route answers 202 with the approval's id.

No ``from __future__ import annotations`` here: FastAPI reads the routes' annotations at runtime, and
the role aliases (``viewer``, ``admin``) are local to ``build_router``.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Generic, Literal, TypeVar, cast

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query
from fastapi.responses import JSONResponse, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent

from assistant.events import (
    ApprovalRequired,
    Event,
    Failed,
    ReplyDelta,
    ReplyDone,
    ToolFinished,
    Turn,
)
from assistant.reads import ToolReadError, read_tool
from assistant.web.panel.auth import PanelAuth, Principal, requires
from assistant.web.panel.events import EventHub, stream
from assistant.web.panel.models import (
    ActionResult,
    AgentInfo,
    AgentsView,
    CallsPage,
    CallStats,
    Decision,
    MinuteCount,
    NextSchedule,
    Overview,
    Problem,
    Replayed,
    ScheduleCreate,
    SchedulePatch,
    Ticket,
    ToolInfo,
    TurnRequest,
    TurnResponse,
)
from bus import Bus, BusError
from bus.messages import DeadLetter
from storage.audit import VerifyReport
from storage.events import CallInfo
from tools.builtin import approvals as approval_tools
from tools.builtin import bots as bot_tools
from tools.builtin import schedules as schedule_tools
from tools.builtin import system as system_tools
from tools.builtin.approvals import ApprovalList
from tools.builtin.bots import BotList
from tools.builtin.schedules import ScheduleHistory, ScheduleList
from tools.builtin.system import AuditLog, SystemStatus
from tools.errors import ToolError

if TYPE_CHECKING:
    from assistant.kommandant import Kommandant
    from assistant.runtime import Runtime

log = logging.getLogger(__name__)

API_CHANNEL = "api"
"""The channel of turns and actions sent to the API."""
PANEL_CHANNEL = "panel"
"""The channel of the reads behind the views (the dashboard leaves them out of its feed and chart)."""
OVERVIEW_SECONDS = 1.0
"""How long one person's overview is reused: dashboards poll it, and it costs five tool calls."""
CALLS_SECONDS = 1.0
"""How long one person's page of calls is reused while no new event arrived (every dashboard polls it)."""
LOAD_WINDOW = timedelta(minutes=1)
"""The window an agent's load is averaged over."""
QUEUE_DEPTH_SECONDS = 2.0
"""How long the agents view waits for the bus to count the calls waiting per agent."""
MAX_ID = 2**63 - 1
"""The largest event id (a Postgres bigint)."""
NAME = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.\-]*$")]
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "The tool could not do it (the detail says why)."},
    401: {"model": Problem, "description": "No bearer token or web login."},
    403: {"model": Problem, "description": "The caller's role may not do this."},
}
ACTED: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    202: {"model": ActionResult, "description": "Waiting for a person's approval."},
    400: {"model": ActionResult, "description": "The tool failed (the text says why)."},
}


K = TypeVar("K")
V = TypeVar("V")


class Reused(Generic[K, V]):
    """Results reused for ``seconds`` per key, built once at a time per key: many dashboards of one
    person polling the same view cost one build per ``seconds``."""

    def __init__(self, seconds: float, *, keep: int = 1000) -> None:
        self.seconds = seconds
        self._keep = keep
        self._done: dict[K, tuple[float, V]] = {}
        self._building: dict[K, asyncio.Task[V]] = {}

    async def get(self, key: K, build: Callable[[], Awaitable[V]]) -> V:
        """The result for ``key``: a recent one, the one being built, or a new build."""
        done = self._done.get(key)
        if done is not None and done[0] > time.monotonic():
            return done[1]
        building = self._building.get(key)
        if building is None:
            building = self._building[key] = asyncio.create_task(_awaited(build))
            building.add_done_callback(lambda _: self._building.pop(key, None))
        result = await asyncio.shield(building)  # one caller going away does not cancel the others' build
        if len(self._done) > self._keep:
            self._done.clear()
        self._done[key] = (time.monotonic() + self.seconds, result)
        return result


async def _awaited(build: Callable[[], Awaitable[V]]) -> V:
    return await build()


class Panel:
    """The control panel of one web process: its auth, event hub and the Kommandant it acts through."""

    def __init__(
        self, runtime: Callable[[], "Runtime"], auth: PanelAuth, hub: EventHub, *, ping: float
    ) -> None:
        self._runtime = runtime
        self.auth = auth
        self.hub = hub
        self.ping = ping
        self._overviews: Reused[tuple[str, str], Overview] = Reused(OVERVIEW_SECONDS)
        self._calls: Reused[tuple[Any, ...], bytes] = Reused(CALLS_SECONDS)

    @property
    def kommandant(self) -> "Kommandant":
        rt = self._runtime()
        assert rt.kommandant is not None
        return rt.kommandant

    def _turn(self, principal: Principal, text: str, channel: str = PANEL_CHANNEL) -> Turn:
        return Turn(text=text, user=principal.user, channel=channel, role=principal.role)

    async def read(self, tool: str, arguments: dict[str, Any], principal: Principal) -> dict[str, Any]:
        """A read tool's result as ``principal``; 400 with the tool's sentence when it gives none."""
        kommandant = self.kommandant
        definition = kommandant.services.catalog.get(tool)
        try:
            return await read_tool(
                kommandant, definition, arguments, self._turn(principal, f"[panel] {tool}")
            )
        except ToolReadError as err:
            raise HTTPException(400, str(err)) from err

    async def act(self, tool: str, arguments: dict[str, Any], principal: Principal) -> JSONResponse:
        """Run ``tool`` through ``Kommandant.run_tool``: 200 done, 202 waiting for an approval (the turn
        stops waiting at once; the approved call then runs detached), 400 failed, 403 refused."""
        kommandant = self.kommandant
        try:
            definition = kommandant.services.catalog.get(tool)
        except ToolError as err:
            raise HTTPException(400, str(err)) from err
        turn = self._turn(principal, f"[api] {tool}", API_CHANNEL)
        outcome = ActionResult(status="done", text="")
        texts: list[str] = []
        async with contextlib.aclosing(
            _generator(kommandant.run_tool(definition, arguments, turn))
        ) as events:
            async for event in events:
                if isinstance(event, ApprovalRequired):
                    outcome.status, outcome.approval_id = "approval_required", event.approval_id
                    texts.append(f"{tool} waits for an approval ({event.approval_id}).")
                    break
                if isinstance(event, ToolFinished):
                    outcome.result = event.structured
                    outcome.status = "done" if event.ok else "failed"
                elif isinstance(event, Failed) and outcome.status == "done":
                    outcome.status = "refused" if event.message.startswith("As a") else "failed"
                elif isinstance(event, ReplyDelta):
                    texts.append(event.text)
        outcome.text = " ".join(t.strip() for t in texts if t.strip())
        code = {"done": 200, "approval_required": 202, "failed": 400, "refused": 403}[outcome.status]
        return JSONResponse(outcome.model_dump(mode="json"), status_code=code)

    async def overview(self, principal: Principal) -> Overview:
        """The overview as ``principal`` may see it; one build at a time per person, reused for
        ``OVERVIEW_SECONDS`` (many dashboards of one person polling cost one build a second)."""
        return await self._overviews.get(
            (principal.user, principal.role), lambda: self._build_overview(principal)
        )

    async def _build_overview(self, principal: Principal) -> Overview:
        status, approvals, bots, schedules, audit = await asyncio.gather(
            self.read(system_tools.STATUS.name, {}, principal),
            self.read(approval_tools.LIST.name, {}, principal),
            self.read(bot_tools.LIST.name, {}, principal),
            self.read(schedule_tools.LIST.name, {}, principal),
            self.read(system_tools.AUDIT_RECENT.name, {"limit": 1}, principal),
        )
        agents = SystemStatus.model_validate(status).agents
        bot_list = BotList.model_validate(bots).bots
        upcoming = sorted(
            (s for s in ScheduleList.model_validate(schedules).schedules if s.enabled and s.next_run_at),
            key=lambda s: s.next_run_at or datetime.max.replace(tzinfo=UTC),
        )
        calls = await self.calls_since(principal, timedelta(hours=1))
        rows = AuditLog.model_validate(audit).rows
        dlq = len(await self._runtime_bus().dead_letters()) if principal.admin else None
        return Overview(
            agents_alive=sum(a.alive for a in agents),
            agents_total=len(agents),
            calls_last_hour={"ok": sum(c.ok for c in calls), "failed": sum(not c.ok for c in calls)},
            pending_approvals=len(ApprovalList.model_validate(approvals).approvals),
            bots_running=sum(b.status == "running" for b in bot_list),
            bots_total=len(bot_list),
            next_schedules=[NextSchedule(name=s.name, next_run_at=s.next_run_at) for s in upcoming[:5]],
            dlq_size=dlq,
            audit_head=rows[0].seq if rows else None,
        )

    async def calls_json(
        self,
        principal: Principal,
        *,
        limit: int,
        before: int | None,
        tool: str | None,
        ok: bool | None,
        include_panel: bool,
    ) -> bytes:
        """A page of calls as ``principal`` may see them, as JSON. Reused for ``CALLS_SECONDS`` while the
        hub has seen no newer event (a new call shows within a poll of the hub, not a second later)."""
        user = None if principal.admin else principal.user
        key = (user, limit, before, tool, ok, include_panel, self.hub.position)

        async def build() -> bytes:
            found = await self.hub.events.calls(
                limit=limit,
                before=before,
                user=user,
                tool=tool,
                ok=ok,
                exclude_channel=None if include_panel else PANEL_CHANNEL,
            )
            page = CallsPage(calls=found, next_before=found[-1].id if len(found) == limit else None)
            return page.model_dump_json().encode()

        return await self._calls.get(key, build)

    async def agents(self, principal: Principal) -> AgentsView:
        """The registry (through the status read tool) with each agent's in-flight calls and load."""
        status = SystemStatus.model_validate(await self.read(system_tools.STATUS.name, {}, principal))
        services = self._runtime().services
        assert services is not None
        loads = await self.hub.events.agent_load(
            call_timeout=timedelta(seconds=services.settings.call_timeout), window=LOAD_WINDOW
        )
        depths = await self._queue_depths(services.bus, [agent.name for agent in status.agents])
        agents = []
        for agent in status.agents:
            known = loads.get(agent.name)
            load = known.busy_seconds / LOAD_WINDOW.total_seconds() if known else 0.0
            agents.append(
                AgentInfo(
                    **agent.model_dump(),
                    in_flight=known.in_flight if known else 0,
                    calls_last_minute=known.finished if known else 0,
                    load=round(load, 6),
                    load_per_instance=round(load / agent.instances, 6) if agent.instances else None,
                    queue_depth=depths.get(agent.name),
                )
            )
        return AgentsView(agents=agents)

    @staticmethod
    async def _queue_depths(bus: Bus, agents: list[str]) -> dict[str, int]:
        """Calls waiting per agent queue; none when the broker does not answer in time (the rest of the
        view is still worth showing, so the depths are left empty rather than failing the request)."""
        try:
            async with asyncio.timeout(QUEUE_DEPTH_SECONDS):
                return await bus.queue_depths(agents)
        except (TimeoutError, BusError) as err:
            log.warning("agents view: no queue depths from the bus: %s", err)
            return {}

    def _runtime_bus(self) -> Any:
        services = self._runtime().services
        assert services is not None
        return services.bus

    async def calls_since(
        self, principal: Principal, window: timedelta, *, include_panel: bool = False
    ) -> list[CallInfo]:
        events = self.hub.events
        user = None if principal.admin else principal.user
        rows = await events.recent(kinds=["tool_result"], since=window, user=user)
        return [_call(r) for r in rows if include_panel or r.data.get("channel") != PANEL_CHANNEL]


def _generator(events: AsyncIterator[Event]) -> AsyncGenerator[Event]:
    """``Kommandant``'s event streams are async generators: closing one runs its clean-up (an approval
    request stops waiting) at once instead of whenever it is collected."""
    return cast("AsyncGenerator[Event]", events)


def _call(row: Any) -> CallInfo:
    data = row.data
    return CallInfo(
        id=row.id,
        ts=row.ts,
        user=row.owner,
        tool=data.get("tool"),
        agent=data.get("agent"),
        ok=bool(data.get("ok")),
        duration_ms=data.get("duration_ms"),
        call_id=data.get("call"),
        channel=data.get("channel"),
        summary=data.get("summary"),
    )


def build_router(panel_of: Callable[[], Panel]) -> APIRouter:
    """Every ``/api`` route; ``panel_of`` gives the running panel (set when the server has started)."""
    router = APIRouter(prefix="/api", responses=ERRORS)

    def auth() -> PanelAuth:
        return panel_of().auth

    viewer = Annotated[Principal, Depends(requires(auth, "viewer"))]
    operator = Annotated[Principal, Depends(requires(auth, "operator"))]
    admin = Annotated[Principal, Depends(requires(auth, "admin"))]
    streamer = Annotated[Principal, Depends(requires(auth, "viewer", ticket_allowed=True))]

    @router.get("/overview", response_model=Overview, tags=["views"])
    async def overview(who: viewer) -> Overview:
        """Agents alive, calls in the last hour by outcome, pending approvals, bots running, the next
        schedules, the dead-letter queue's size (admins) and the audit chain's head."""
        return await panel_of().overview(who)

    @router.get("/agents", response_model=AgentsView, tags=["views"])
    async def agents(who: viewer) -> AgentsView:
        """The agent registry: each agent's replicas, last heartbeat and tools, with its calls in flight
        and its load over the last minute (from the event log)."""
        return await panel_of().agents(who)

    @router.get("/tools", response_model=list[ToolInfo], tags=["views"])
    async def tools(who: viewer) -> list[ToolInfo]:
        """The tool catalog with schemas and risk."""
        return [
            ToolInfo(
                name=t.name,
                description=t.description,
                agent=t.agent,
                risk=t.risk.value,
                input_schema=t.input_schema(),
                output_schema=t.output_schema(),
            )
            for t in panel_of().kommandant.services.catalog
        ]

    @router.get("/calls", response_model=CallsPage, tags=["views"])
    async def calls(
        who: viewer,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
        tool: Annotated[str | None, Query(max_length=100)] = None,
        outcome: Literal["ok", "failed"] | None = None,
        include_panel: bool = False,
    ) -> Response:
        """Recent tool calls, newest first: who, what, outcome, duration (the caller's own; an admin's:
        everyone's). ``include_panel`` adds the reads behind these views."""
        body = await panel_of().calls_json(
            who,
            limit=limit,
            before=before,
            tool=tool or None,
            ok=None if outcome is None else outcome == "ok",
            include_panel=include_panel,
        )
        return Response(body, media_type="application/json")  # serialised once per build, not per request

    @router.get("/calls/stats", response_model=CallStats, tags=["views"])
    async def call_stats(who: viewer, minutes: Annotated[int, Query(ge=1, le=1440)] = 60) -> CallStats:
        """Finished calls per minute over the last ``minutes``, by outcome (for the dashboard's chart)."""
        found = await panel_of().calls_since(who, timedelta(minutes=minutes))
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        buckets = {now - timedelta(minutes=i): [0, 0] for i in range(minutes)}
        for call in found:
            bucket = buckets.get(call.ts.astimezone(UTC).replace(second=0, microsecond=0))
            if bucket is not None:
                bucket[0 if call.ok else 1] += 1
        return CallStats(
            minutes=[MinuteCount(minute=m, ok=v[0], failed=v[1]) for m, v in sorted(buckets.items())]
        )

    @router.get("/bots", response_model=BotList, tags=["bots"])
    async def bots(who: viewer) -> dict[str, Any]:
        """The registered bots with state, restarts and resource use."""
        return await panel_of().read(bot_tools.LIST.name, {}, who)

    @router.post("/bots/{name}/start", response_model=ActionResult, responses=ACTED, tags=["bots"])
    async def bot_start(name: NAME, who: operator) -> JSONResponse:
        """Start a bot."""
        return await panel_of().act(bot_tools.START.name, {"name": name}, who)

    @router.post("/bots/{name}/restart", response_model=ActionResult, responses=ACTED, tags=["bots"])
    async def bot_restart(name: NAME, who: operator) -> JSONResponse:
        """Restart a bot."""
        return await panel_of().act(bot_tools.RESTART.name, {"name": name}, who)

    @router.post("/bots/{name}/stop", response_model=ActionResult, responses=ACTED, tags=["bots"])
    async def bot_stop(name: NAME, who: admin) -> JSONResponse:
        """Stop a bot (dangerous: admins, and it waits for an approval)."""
        return await panel_of().act(bot_tools.STOP.name, {"name": name}, who)

    @router.get("/schedules", response_model=ScheduleList, tags=["schedules"])
    async def schedules(who: viewer) -> dict[str, Any]:
        """The schedules with their next run."""
        return await panel_of().read(schedule_tools.LIST.name, {}, who)

    @router.post("/schedules", response_model=ActionResult, responses=ACTED, tags=["schedules"])
    async def schedule_create(body: ScheduleCreate, who: operator) -> JSONResponse:
        """Create a schedule: its sentence is understood now, as the caller."""
        return await panel_of().act(schedule_tools.CREATE.name, body.model_dump(exclude_none=True), who)

    @router.patch("/schedules/{name}", response_model=ActionResult, responses=ACTED, tags=["schedules"])
    async def schedule_patch(name: NAME, body: SchedulePatch, who: operator) -> JSONResponse:
        """Pause or resume a schedule."""
        tool = schedule_tools.ENABLE.name if body.enabled else schedule_tools.DISABLE.name
        return await panel_of().act(tool, {"name": name}, who)

    @router.delete("/schedules/{name}", response_model=ActionResult, responses=ACTED, tags=["schedules"])
    async def schedule_delete(name: NAME, who: admin) -> JSONResponse:
        """Delete a schedule (dangerous: admins, and it waits for an approval)."""
        return await panel_of().act(schedule_tools.DELETE.name, {"name": name}, who)

    @router.post(
        "/schedules/{name}/run-now", response_model=ActionResult, responses=ACTED, tags=["schedules"]
    )
    async def schedule_run_now(name: NAME, who: operator) -> JSONResponse:
        """Run a schedule's command now."""
        return await panel_of().act(schedule_tools.RUN_NOW.name, {"name": name}, who)

    @router.post("/schedules/{name}/enable", response_model=ActionResult, responses=ACTED, tags=["schedules"])
    async def schedule_enable(name: NAME, who: operator) -> JSONResponse:
        """Resume a paused schedule."""
        return await panel_of().act(schedule_tools.ENABLE.name, {"name": name}, who)

    @router.post(
        "/schedules/{name}/disable", response_model=ActionResult, responses=ACTED, tags=["schedules"]
    )
    async def schedule_disable(name: NAME, who: operator) -> JSONResponse:
        """Pause a schedule."""
        return await panel_of().act(schedule_tools.DISABLE.name, {"name": name}, who)

    @router.get("/schedules/{name}/history", response_model=ScheduleHistory, tags=["schedules"])
    async def schedule_history(
        name: NAME, who: viewer, limit: Annotated[int, Query(ge=1, le=100)] = 20
    ) -> dict[str, Any]:
        """A schedule's recent runs."""
        return await panel_of().read(schedule_tools.HISTORY.name, {"name": name, "limit": limit}, who)

    @router.get("/approvals", response_model=ApprovalList, tags=["approvals"])
    async def approvals(who: viewer, status: Literal["pending"] = "pending") -> dict[str, Any]:
        """Pending approvals: an admin's view has all, anyone else's their own requests."""
        return await panel_of().read(approval_tools.LIST.name, {}, who)

    @router.post(
        "/approvals/{approval_id}/approve", response_model=ActionResult, responses=ACTED, tags=["approvals"]
    )
    async def approve(
        approval_id: Annotated[str, Path(min_length=4, max_length=64, pattern=r"^[0-9a-fA-F-]+$")],
        who: admin,
        body: Decision | None = None,
    ) -> JSONResponse:
        """Approve: a requester still waiting runs the call in their turn; else it runs detached."""
        reason = {"reason": body.reason} if body and body.reason else {}
        return await panel_of().act(
            approval_tools.DECIDE.name, {"id": approval_id, "approve": True, **reason}, who
        )

    @router.post(
        "/approvals/{approval_id}/reject", response_model=ActionResult, responses=ACTED, tags=["approvals"]
    )
    async def reject(
        approval_id: Annotated[str, Path(min_length=4, max_length=64, pattern=r"^[0-9a-fA-F-]+$")],
        who: admin,
        body: Decision | None = None,
    ) -> JSONResponse:
        """Reject: the waiting call does not run."""
        reason = {"reason": body.reason} if body and body.reason else {}
        return await panel_of().act(
            approval_tools.DECIDE.name, {"id": approval_id, "approve": False, **reason}, who
        )

    @router.get("/audit", response_model=AuditLog, tags=["audit"])
    async def audit(
        who: viewer,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        kind: Annotated[str | None, Query(max_length=50)] = None,
    ) -> dict[str, Any]:
        """The newest audit rows (the caller's own; an admin's: everyone's), optionally of one ``kind``
        among them."""
        found = await panel_of().read(system_tools.AUDIT_RECENT.name, {"limit": limit}, who)
        if kind:
            found["rows"] = [r for r in found.get("rows", []) if r.get("kind") == kind]
        return found

    @router.post("/audit/verify", response_model=VerifyReport, tags=["audit"])
    async def audit_verify(who: admin) -> VerifyReport:
        """Walk the whole hash chain and report the first problem (admins; the check itself is audited)."""
        services = panel_of().kommandant.services
        report = await services.audit.verify()
        await services.audit.append(
            "audit_verified",
            actor=who.user,
            channel=API_CHANNEL,
            data={"ok": report.ok, "rows": report.rows_checked},
        )
        return report

    @router.get("/dlq", response_model=list[DeadLetter], tags=["dlq"])
    async def dlq(who: admin, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[DeadLetter]:
        """Dead-lettered calls, oldest first (admins)."""
        letters: list[DeadLetter] = await panel_of().kommandant.services.bus.dead_letters(limit)
        return letters

    @router.post(
        "/dlq/{letter_id}/replay",
        response_model=Replayed,
        tags=["dlq"],
        responses={404: {"model": Problem, "description": "No such dead letter."}},
    )
    async def dlq_replay(
        letter_id: Annotated[str, Path(min_length=1, max_length=200)], who: admin
    ) -> Replayed:
        """Send one dead-lettered call to its agent again (admins; audited)."""
        services = panel_of().kommandant.services
        count = await services.bus.replay([letter_id])
        if not count:
            raise HTTPException(404, f"There is no dead letter {letter_id!r}.")
        await services.audit.append(
            "dlq_replayed", actor=who.user, channel=API_CHANNEL, data={"id": letter_id, "count": count}
        )
        return Replayed(replayed=count)

    @router.post("/turns", response_model=TurnResponse, tags=["turns"])
    async def turns(body: TurnRequest, who: viewer) -> TurnResponse:
        """Run a turn as the caller, like a line typed in the chat; the events as the chat gets them."""
        kommandant = panel_of().kommandant
        turn = Turn(text=body.text, user=who.user, channel=API_CHANNEL, role=who.role, thread=body.thread)
        events: list[dict[str, Any]] = []
        reply, complete = "", False
        async with contextlib.aclosing(_generator(kommandant.handle(turn))) as stream_:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(body.wait):
                    async for event in stream_:
                        events.append(event.to_json())
                        if isinstance(event, ReplyDone):
                            reply, complete = event.text, True
        return TurnResponse(events=events, reply=reply, complete=complete)

    @router.post("/events/ticket", response_model=Ticket, tags=["events"])
    async def ticket(who: viewer) -> Ticket:
        """A ticket to open the event stream from a browser (``?ticket=``), valid for a minute."""
        tickets = panel_of().auth.tickets
        return Ticket(ticket=tickets.issue(who), expires_in=tickets.ttl)

    @router.get("/events", response_class=EventSourceResponse, tags=["events"])
    async def events(
        who: streamer,
        kinds: Annotated[str | None, Query(max_length=500, description="Comma-separated kinds")] = None,
        last_event_id: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
        last_event_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
        ticket: Annotated[str | None, Query(max_length=500)] = None,
    ) -> AsyncIterator[ServerSentEvent]:
        """Server-Sent Events: tool lifecycle, approvals, agents up and down, bot states, schedule runs,
        reminders fired. ``Last-Event-ID`` (or ``last_event_id``) resumes after that event."""
        resume = last_event_id
        if last_event_header and last_event_header.strip().isdigit():
            resume = min(int(last_event_header.strip()), MAX_ID)
        wanted = frozenset(k.strip() for k in (kinds or "").split(",") if k.strip())
        panel = panel_of()
        async for event in stream(panel.hub, who, last_event_id=resume, kinds=wanted, ping=panel.ping):
            yield event

    return router
