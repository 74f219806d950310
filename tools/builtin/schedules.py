"""Schedule tools: run a command sentence on a cron, an interval or once at a moment."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from tools.builtin.base import NewScheduleName, ScheduleName, ShortText, ToolInput, ToolOutput, when_text
from tools.builtin.system import describe_tool
from tools.definition import Risk, ToolDefinition

AGENT = "scheduler"

_CRON_ITEM = r"(\*|\d{1,2}(-\d{1,2})?)(/\d{1,2})?"
_CRON_FIELD = re.compile(rf"^{_CRON_ITEM}(,{_CRON_ITEM})*$")
_CRON_NAMES = ("minute", "hour", "day of month", "month", "day of week")
_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


class Recurrence(BaseModel):
    """When a schedule runs: exactly one of a cron expression, an interval, or a single moment."""

    model_config = ConfigDict(extra="forbid")

    cron: str | None = Field(
        default=None,
        max_length=100,
        description="A 5-field cron expression, e.g. '0 9 * * 1' (Mondays 9:00).",
    )
    every_seconds: int | None = Field(
        default=None, ge=1, le=31_536_000, description="Run every this many seconds, e.g. 900."
    )
    at: AwareDatetime | None = Field(default=None, description="Run once at this timezone-aware moment.")

    @field_validator("cron")
    @classmethod
    def _check_cron(cls, value: str | None) -> str | None:
        if value is None:
            return None
        fields = value.split()
        if len(fields) != 5:
            raise ValueError(
                f"a cron expression has 5 fields (minute hour day month weekday), got {len(fields)}"
            )
        for name, part in zip(_CRON_NAMES, fields, strict=True):
            if not _CRON_FIELD.match(part):
                raise ValueError(f"the {name} field {part!r} is not valid cron syntax")
        try:
            CronSim(" ".join(fields), datetime(2000, 1, 1))
        except CronSimError as err:  # in range per field, e.g. minute 75 or month 13
            raise ValueError(f"the cron expression {value!r} is not valid: {err}") from err
        return " ".join(fields)

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [name for name in ("cron", "every_seconds", "at") if getattr(self, name) is not None]
        if len(given) != 1:
            detail = "none" if not given else ", ".join(given)
            raise ValueError(f"give exactly one of cron, every_seconds or at (got {detail})")
        return self

    def next_after(
        self, after: datetime, timezone: str, *, anchor: datetime | None = None
    ) -> datetime | None:
        """The first time strictly after ``after`` that this recurrence runs, in UTC; None when no time is
        left (a moment that passed).

        A cron expression is read on the wall clock of ``timezone`` (cronsim follows Debian cron): a time
        the clock skips in spring runs once right after the jump, a fixed time the clock repeats in autumn
        runs once, and a wildcard hour runs in both passes. An interval is elapsed time counted from
        ``anchor`` (the first run), so clock changes never stretch or shrink it.
        """
        after = after.astimezone(UTC)
        if self.at is not None:
            moment = self.at.astimezone(UTC)
            return moment if moment > after else None
        if self.every_seconds is not None:
            step = timedelta(seconds=self.every_seconds)
            base = (anchor or after).astimezone(UTC)
            if base > after:
                return base
            return base + step * ((after - base) // step + 1)
        local = after.astimezone(ZoneInfo(timezone))
        for count, candidate in enumerate(CronSim(self.cron or "", local)):
            moment = candidate.astimezone(UTC)
            if moment > after:  # cronsim may answer with the first pass of a repeated hour we are past
                return moment
            if count > 4:
                break
        raise ValueError(f"cron {self.cron!r} gives no time after {after.isoformat()}")

    def describe(self) -> str:
        """A short human description, e.g. "every 15 minutes" or "on cron 0 9 * * 1"."""
        if self.at is not None:
            return f"on {when_text(self.at)}"
        if self.every_seconds is not None:
            return _describe_interval(self.every_seconds)
        return _describe_cron(self.cron or "")


def _describe_interval(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return f"every {unit}" if count == 1 else f"every {count} {unit}s"
    return f"every {seconds} seconds"


def _describe_cron(cron: str) -> str:
    minute, hour, day, month, weekday = cron.split()
    if minute.isdigit() and hour.isdigit() and day == "*" and month == "*":
        clock = f"{int(hour)}:{int(minute):02d}"
        if weekday == "*":
            return f"every day at {clock}"
        if weekday == "1-5":
            return f"every weekday at {clock}"
        if weekday.isdigit() and int(weekday) <= 6:
            return f"every {_DAYS[int(weekday)]} at {clock}"
    return f"on cron {cron}"


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(f"{value!r} is not an IANA time zone (e.g. 'Europe/Copenhagen')") from err
    return value


TimeZoneName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), AfterValidator(_check_zone)
]
"""An IANA time zone name, e.g. 'America/New_York'."""

Misfire = Literal["once", "all", "skip"]
"""What happens to occurrences missed while no scheduler ran."""


class ScheduledIntent(BaseModel):
    """One tool call a schedule makes when due: the command as it was understood at creation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tool: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$", description="The tool to call.")
    arguments: dict[str, Any] = Field(default_factory=dict, description="Its arguments.")


class SchedulesCreateInput(ToolInput):
    """Run a command sentence on a schedule."""

    target: ShortText = Field(
        description="The command sentence to run when due, e.g. 'start the backup bot'."
    )
    when: Recurrence = Field(description="When to run it.")
    name: NewScheduleName | None = Field(
        default=None, description="A name for the schedule; derived when left out."
    )
    timezone: TimeZoneName | None = Field(
        default=None,
        description="IANA time zone the cron times are read in, e.g. 'Europe/Copenhagen'; default: "
        "Kommandant's configured time zone.",
    )
    concurrency: int = Field(
        default=1, ge=1, le=100, description="How many runs of this schedule may be under way at once."
    )
    misfire: Misfire = Field(
        default="once",
        description="After downtime: 'once' runs the missed occurrences once, 'all' runs each of them, "
        "'skip' runs none; each missed occurrence is recorded either way.",
    )
    grace_seconds: int = Field(
        default=60,
        ge=0,
        le=86_400,
        description="An occurrence at most this late is on time; later ones follow the misfire policy.",
    )
    command: list[ScheduledIntent] = Field(
        default_factory=list,
        max_length=10,
        description="Filled in by Kommandant: the tool calls the target sentence means, understood as the "
        "person asking when the schedule is created. Leave it out.",
    )


class SchedulesListInput(ToolInput):
    """List the schedules."""


class ScheduleNameInput(ToolInput):
    """Name one schedule."""

    name: ScheduleName = Field(description="The schedule's name, e.g. 'backup'.")


class ScheduleHistoryInput(ToolInput):
    """Name one schedule and how many of its latest runs to show."""

    name: ScheduleName = Field(description="The schedule's name, e.g. 'backup'.")
    limit: int = Field(default=20, ge=1, le=500, description="How many of the latest runs to show.")


class ScheduleInfo(ToolOutput):
    """One schedule."""

    name: str = Field(description="The schedule's name.")
    target: str = Field(description="The command sentence it runs: the command in words.")
    when: Recurrence = Field(description="When it runs.")
    timezone: str = Field(default="UTC", description="The IANA time zone its cron times are read in.")
    next_run_at: datetime | None = Field(default=None, description="The next time it runs, if any.")
    last_run_at: datetime | None = Field(default=None, description="When it last ran, if ever.")
    enabled: bool = Field(default=True, description="False when paused.")
    owner: str = Field(default="", description="Who created it; it runs as them, with their role then.")
    concurrency: int = Field(default=1, description="How many of its runs may be under way at once.")
    misfire: Misfire = Field(default="once", description="What happens to occurrences missed in downtime.")
    command: list[ScheduledIntent] = Field(default_factory=list, description="The tool calls it makes.")

    def summary(self) -> str:
        state = "" if self.enabled else " (disabled)"
        nxt = (
            f"; next {when_text(self.next_run_at.astimezone(ZoneInfo(self.timezone)))}"
            if (self.next_run_at and self.enabled)
            else ""
        )
        return f"Schedule {self.name}{state}: {self.target} {self.when.describe()}{nxt}."


class ScheduleCreated(ToolOutput):
    """The schedule that was created."""

    schedule: ScheduleInfo = Field(description="The new schedule.")

    def summary(self) -> str:
        return f"Scheduled ({self.schedule.name}): {self.schedule.target} {self.schedule.when.describe()}."


class ScheduleChanged(ToolOutput):
    """A schedule after it was enabled or disabled."""

    schedule: ScheduleInfo = Field(description="The schedule now.")

    def summary(self) -> str:
        return self.schedule.summary()


class ScheduleList(ToolOutput):
    """All schedules."""

    schedules: list[ScheduleInfo] = Field(default_factory=list, description="The schedules, by name.")

    def summary(self) -> str:
        if not self.schedules:
            return "There are no schedules."
        return f"{len(self.schedules)} schedules: " + " ".join(s.summary() for s in self.schedules)


class ScheduleDeleted(ToolOutput):
    """The schedule that was deleted."""

    name: str = Field(description="The deleted schedule's name.")

    def summary(self) -> str:
        return f"Deleted the {self.name} schedule."


class ScheduleRun(ToolOutput):
    """A run started by hand."""

    name: str = Field(description="The schedule's name.")
    run_id: str = Field(description="The id of the run.")
    started_at: datetime = Field(description="When the run was queued.")

    def summary(self) -> str:
        return f"Running the {self.name} schedule now."


class ScheduledRunInfo(BaseModel):
    """One run of a schedule."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="The run's id.")
    due_at: datetime = Field(description="The occurrence it ran for (planned start).")
    started_at: datetime = Field(description="When it was claimed and started.")
    finished_at: datetime | None = Field(default=None, description="When it finished, if it has.")
    status: str = Field(
        description="queued, running, ok, failed, rejected, expired (approval not given in time), "
        "'skipped: concurrency', 'skipped: misfire' or lost (its scheduler stopped mid-run)."
    )
    trigger: str = Field(default="schedule", description="schedule, catch-up or manual.")
    reply: str | None = Field(default=None, description="What the command answered.")


class ScheduleHistory(ToolOutput):
    """The latest runs of one schedule, newest first."""

    name: str = Field(description="The schedule's name.")
    runs: list[ScheduledRunInfo] = Field(default_factory=list, description="Runs, newest first.")

    def summary(self) -> str:
        if not self.runs:
            return f"The {self.name} schedule has not run yet."
        shown = "; ".join(f"{when_text(r.due_at)} {r.status}" for r in self.runs[:10])
        return f"The {self.name} schedule ran {len(self.runs)} times (newest first): {shown}."


CREATE = ToolDefinition(
    name="schedules_create",
    description="Schedule a command sentence to run on a cron, every N seconds, or once at a moment.",
    agent=AGENT,
    input_model=SchedulesCreateInput,
    output_model=ScheduleCreated,
    risk=Risk.WRITE,
)
LIST = ToolDefinition(
    name="schedules_list",
    description="List the schedules: the command in words, when they run next and last, enabled or not.",
    agent=AGENT,
    input_model=SchedulesListInput,
    output_model=ScheduleList,
    risk=Risk.READ,
)
DELETE = ToolDefinition(
    name="schedules_delete",
    description="Delete a schedule.",
    agent=AGENT,
    input_model=ScheduleNameInput,
    output_model=ScheduleDeleted,
    risk=Risk.DANGEROUS,
)
RUN_NOW = ToolDefinition(
    name="schedules_run_now",
    description="Run a schedule's command now, without waiting for its time.",
    agent=AGENT,
    input_model=ScheduleNameInput,
    output_model=ScheduleRun,
    risk=Risk.WRITE,
)
ENABLE = ToolDefinition(
    name="schedules_enable",
    description="Enable a paused schedule; it runs again from its next time on (missed times are not run).",
    agent=AGENT,
    input_model=ScheduleNameInput,
    output_model=ScheduleChanged,
    risk=Risk.WRITE,
    repeatable=True,  # sets a state: setting it twice is setting it once
)
DISABLE = ToolDefinition(
    name="schedules_disable",
    description="Pause a schedule: it does not run until enabled again.",
    agent=AGENT,
    input_model=ScheduleNameInput,
    output_model=ScheduleChanged,
    risk=Risk.WRITE,
    repeatable=True,
)
HISTORY = ToolDefinition(
    name="schedules_history",
    description="Show a schedule's latest runs: when each was due, how it ended.",
    agent=AGENT,
    input_model=ScheduleHistoryInput,
    output_model=ScheduleHistory,
    risk=Risk.READ,
)

DESCRIBE = describe_tool(AGENT)

TOOLS = (CREATE, LIST, DELETE, RUN_NOW, ENABLE, DISABLE, HISTORY, DESCRIBE)
