"""Reminder tools: create, list and cancel reminders."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from tools.builtin.base import ShortText, ToolInput, ToolOutput, sentence, when_text
from tools.definition import Risk, ToolDefinition
from tools.facts import EntityKind, Names

AGENT = "reminders"


class ReminderCreateInput(ToolInput):
    """Remind the person of something at a moment in time."""

    text: ShortText = Field(description="What to remind the person of, e.g. 'call mom'.")
    due: AwareDatetime = Field(description="When to remind, a timezone-aware ISO 8601 date and time.")


class RemindersListInput(ToolInput):
    """List the pending reminders."""


class ReminderCancelInput(ToolInput):
    """Cancel one reminder."""

    reminder: Annotated[ShortText, Names(EntityKind.REMINDER)] = Field(
        description="The reminder's id, or words from its text, e.g. 'call mom'."
    )


class ReminderInfo(ToolOutput):
    """One reminder."""

    id: str = Field(description="The reminder's id.")
    text: str = Field(description="What to remind of.")
    due: AwareDatetime = Field(description="When the reminder is due.")
    status: Literal["pending", "sent", "cancelled"] = Field(description="Whether it is still to come.")

    def summary(self) -> str:
        return f"{sentence(self.text).rstrip('.')} — {when_text(self.due)} ({self.status})."


class ReminderCreated(ToolOutput):
    """The reminder that was created."""

    reminder: ReminderInfo = Field(description="The new reminder.")

    def summary(self) -> str:
        return f"OK — I'll remind you to {self.reminder.text} on {when_text(self.reminder.due)}."


class ReminderList(ToolOutput):
    """Pending reminders, soonest first."""

    reminders: list[ReminderInfo] = Field(default_factory=list, description="Reminders, soonest first.")

    def summary(self) -> str:
        if not self.reminders:
            return "You have no reminders."
        first = self.reminders[0]
        count = len(self.reminders)
        noun = "reminder" if count == 1 else "reminders"
        return f"You have {count} {noun}; next: {first.text} on {when_text(first.due)}."


class ReminderCancelled(ToolOutput):
    """The reminder that was cancelled."""

    reminder: ReminderInfo = Field(description="The cancelled reminder.")

    def summary(self) -> str:
        return f"Cancelled the reminder to {self.reminder.text}."


CREATE = ToolDefinition(
    name="reminders_create",
    description="Create a reminder: what to remind the person of, and when.",
    agent=AGENT,
    input_model=ReminderCreateInput,
    output_model=ReminderCreated,
    risk=Risk.WRITE,
    repeatable=True,
)
LIST = ToolDefinition(
    name="reminders_list",
    description="List the person's pending reminders.",
    agent=AGENT,
    input_model=RemindersListInput,
    output_model=ReminderList,
    risk=Risk.READ,
)
CANCEL = ToolDefinition(
    name="reminders_cancel",
    description="Cancel a reminder, given its id or words from its text.",
    agent=AGENT,
    input_model=ReminderCancelInput,
    output_model=ReminderCancelled,
    risk=Risk.WRITE,
)

TOOLS = (CREATE, LIST, CANCEL)
