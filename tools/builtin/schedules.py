"""Schedule tools: run a command sentence on a cron, an interval or once at a moment."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from tools.builtin.base import NewScheduleName, ScheduleName, ShortText, ToolInput, ToolOutput, when_text
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
        return " ".join(fields)

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [name for name in ("cron", "every_seconds", "at") if getattr(self, name) is not None]
        if len(given) != 1:
            detail = "none" if not given else ", ".join(given)
            raise ValueError(f"give exactly one of cron, every_seconds or at (got {detail})")
        return self

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


class SchedulesCreateInput(ToolInput):
    """Run a command sentence on a schedule."""

    target: ShortText = Field(
        description="The command sentence to run when due, e.g. 'start the backup bot'."
    )
    when: Recurrence = Field(description="When to run it.")
    name: NewScheduleName | None = Field(
        default=None, description="A name for the schedule; derived when left out."
    )


class SchedulesListInput(ToolInput):
    """List the schedules."""


class ScheduleNameInput(ToolInput):
    """Name one schedule."""

    name: ScheduleName = Field(description="The schedule's name, e.g. 'backup'.")


class ScheduleInfo(ToolOutput):
    """One schedule."""

    name: str = Field(description="The schedule's name.")
    target: str = Field(description="The command sentence it runs.")
    when: Recurrence = Field(description="When it runs.")
    next_run_at: datetime | None = Field(default=None, description="The next time it runs, if any.")
    enabled: bool = Field(default=True, description="False when paused.")

    def summary(self) -> str:
        return f"Schedule {self.name}: {self.target} {self.when.describe()}."


class ScheduleCreated(ToolOutput):
    """The schedule that was created."""

    schedule: ScheduleInfo = Field(description="The new schedule.")

    def summary(self) -> str:
        return f"Scheduled: {self.schedule.target} {self.schedule.when.describe()}."


class ScheduleList(ToolOutput):
    """All schedules."""

    schedules: list[ScheduleInfo] = Field(default_factory=list, description="The schedules, by name.")

    def summary(self) -> str:
        if not self.schedules:
            return "There are no schedules."
        return f"{len(self.schedules)} schedules: " + ", ".join(s.name for s in self.schedules) + "."


class ScheduleDeleted(ToolOutput):
    """The schedule that was deleted."""

    name: str = Field(description="The deleted schedule's name.")

    def summary(self) -> str:
        return f"Deleted the {self.name} schedule."


class ScheduleRun(ToolOutput):
    """A run started by hand."""

    name: str = Field(description="The schedule's name.")
    run_id: str = Field(description="The id of the run.")
    started_at: datetime = Field(description="When the run started.")

    def summary(self) -> str:
        return f"Running the {self.name} schedule now."


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
    description="List the schedules and when they run next.",
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

TOOLS = (CREATE, LIST, DELETE, RUN_NOW)
