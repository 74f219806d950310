"""The control panel API's own request and response bodies (tool outputs are served as the tools define
them: the same schema in MCP, on the bus and here)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from storage.events import CallInfo
from tools.builtin.schedules import SchedulesCreateInput
from tools.builtin.system import AgentStatus


class Problem(BaseModel):
    """An error: a sentence for the person."""

    detail: str = Field(description="What went wrong, in words.")


class ActionResult(BaseModel):
    """What a tool run through the API did: done, failed, refused, or waiting for an approval."""

    status: Literal["done", "failed", "refused", "approval_required"] = Field(description="The outcome.")
    text: str = Field(description="The reply, as the chat would show it.")
    result: dict[str, Any] | None = Field(default=None, description="The tool's structured result.")
    approval_id: str | None = Field(default=None, description="The approval to decide, when one is needed.")


class TurnRequest(BaseModel):
    """A command to run as the token's user, like a line typed in the chat."""

    text: str = Field(min_length=1, max_length=10_000, description="The command, e.g. 'list my bots'.")
    thread: str | None = Field(default=None, max_length=200, description="Conversation thread, if any.")
    wait: float = Field(
        default=60.0,
        ge=0,
        le=120,
        description="Seconds to wait for the turn to end (an approval may hold it); after that the turn "
        "stops waiting, and an approval decided later runs the call detached.",
    )


class TurnResponse(BaseModel):
    """The turn's events, in order, as every front door gets them."""

    events: list[dict[str, Any]] = Field(description="IntentRecognized, ToolStarted, ... ReplyDone.")
    reply: str = Field(description="The whole reply.")
    complete: bool = Field(description="False when the turn was still waiting when ``wait`` ran out.")


class ToolInfo(BaseModel):
    """One tool of the catalog."""

    name: str = Field(description="The tool's name.")
    description: str = Field(description="What it does.")
    agent: str = Field(description="The agent that serves it.")
    risk: Literal["read", "write", "dangerous"] = Field(description="Dangerous tools need an approval.")
    input_schema: dict[str, Any] = Field(description="JSON schema of its arguments.")
    output_schema: dict[str, Any] = Field(description="JSON schema of its result.")


class AgentInfo(AgentStatus):
    """One agent: the registry's view (replicas, heartbeat, tools) and what it is doing now."""

    in_flight: int = Field(
        default=0,
        ge=0,
        description="Calls sent to it and not answered yet: a tool_call event without its tool_result, "
        "younger than the call timeout (reads are recorded when they end, so mostly writes).",
    )
    calls_last_minute: int = Field(default=0, ge=0, description="Calls it finished in the last minute.")
    load: float = Field(
        default=0.0,
        ge=0,
        description="Calls in progress on average over the last minute: the durations of the calls it "
        "finished then, added up, divided by 60 s (1.0: one call running all the time).",
    )
    load_per_instance: float | None = Field(
        default=None, ge=0, description="``load`` divided by its replicas (None when none is serving)."
    )
    queue_depth: int | None = Field(
        default=None,
        ge=0,
        description="Calls waiting on its bus queue, not yet taken by a worker (None when the bus could "
        "not be asked; the same figure as ``kommandant_queue_depth`` on ``/metrics``).",
    )


class AgentsView(BaseModel):
    """Every agent the registry knows, with its in-flight calls, load and calls waiting on its queue."""

    agents: list[AgentInfo] = Field(default_factory=list, description="The known agents.")


class CallsPage(BaseModel):
    """Recent tool calls, newest first."""

    calls: list[CallInfo] = Field(description="The calls.")
    next_before: int | None = Field(default=None, description="Pass as ``before`` for the next page.")


class MinuteCount(BaseModel):
    """Calls finished in one minute."""

    minute: datetime = Field(description="The minute's start (UTC).")
    ok: int = Field(description="Calls that succeeded.")
    failed: int = Field(description="Calls that failed.")


class CallStats(BaseModel):
    """Calls per minute over a window, oldest minute first."""

    minutes: list[MinuteCount] = Field(description="One entry per minute.")


class NextSchedule(BaseModel):
    """A schedule and when it runs next."""

    name: str = Field(description="The schedule.")
    next_run_at: datetime | None = Field(default=None, description="Its next run.")


class Overview(BaseModel):
    """The system at a glance, as the caller may see it."""

    agents_alive: int = Field(description="Agents with a recent heartbeat.")
    agents_total: int = Field(description="Agents known to the registry.")
    calls_last_hour: dict[str, int] = Field(description="Finished calls by outcome: ok, failed.")
    pending_approvals: int = Field(description="Approvals waiting (the caller's own, or all for admins).")
    bots_running: int = Field(description="Bots whose process runs.")
    bots_total: int = Field(description="Registered bots.")
    next_schedules: list[NextSchedule] = Field(description="The next five schedules to run.")
    dlq_size: int | None = Field(default=None, description="Dead-lettered calls (admins only).")
    audit_head: int | None = Field(default=None, description="The newest audit row's position.")


class ScheduleCreate(SchedulesCreateInput):
    """A new schedule: a command sentence and when to run it (understood as the caller, now)."""


class SchedulePatch(BaseModel):
    """A change to a schedule: pause or resume it."""

    enabled: bool = Field(description="False pauses the schedule, true resumes it.")


class Decision(BaseModel):
    """Why an approval was decided so (kept in the audit trail)."""

    reason: str | None = Field(default=None, min_length=1, max_length=500, description="Why.")


class Ticket(BaseModel):
    """A short-lived ticket for ``GET /api/events?ticket=...`` (browsers cannot send headers there)."""

    ticket: str = Field(description="The ticket; good for opening a stream for ``expires_in`` seconds.")
    expires_in: float = Field(description="Seconds it stays valid.")


class Replayed(BaseModel):
    """How many dead-lettered calls went back to their agents."""

    replayed: int = Field(description="Calls replayed.")
