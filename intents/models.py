"""What recognition returns, and the facts the caller passes in: live lists and conversation context."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["ConversationContext", "IntentMatch", "LiveLists"]

Topic = Literal["bot", "schedule", "reminder", "approval"]


@dataclass(frozen=True)
class IntentMatch:
    """One recognised command: the tool to call and its validated, JSON-compatible arguments."""

    tool: str
    arguments: dict[str, Any]
    confidence: float
    source: Literal["template", "llm", "corrected"] = "template"
    """How it was found: a template, the LLM, or a template after correcting a misheard word."""
    text: str = ""
    """The part of the utterance this match came from, in the person's wording."""

    def to_json(self) -> dict[str, Any]:
        """The stable JSON form: tool, arguments, confidence, source."""
        return {
            "tool": self.tool,
            "arguments": self.arguments,
            "confidence": round(self.confidence, 3),
            "source": self.source,
        }


@dataclass
class LiveLists:
    """Names known at match time (fetched from storage by the caller)."""

    bots: Sequence[str] = ()
    schedules: Sequence[str] = ()
    reminders: Sequence[str] = ()

    def key(self) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        """A hashable form, for caches."""
        return tuple(self.bots), tuple(self.schedules), tuple(self.reminders)


NAMED_ARGUMENT: dict[str, tuple[Topic, str]] = {
    "bots_start": ("bot", "name"),
    "bots_stop": ("bot", "name"),
    "bots_restart": ("bot", "name"),
    "bots_status": ("bot", "name"),
    "bots_logs": ("bot", "name"),
    "schedules_create": ("schedule", "name"),
    "schedules_delete": ("schedule", "name"),
    "schedules_run_now": ("schedule", "name"),
    "reminders_cancel": ("reminder", "reminder"),
    "approvals_decide": ("approval", "id"),
}


@dataclass
class ConversationContext:
    """What the conversation talked about last, so "stop it" or "show its logs" can be resolved."""

    bot: str | None = None
    schedule: str | None = None
    reminder: str | None = None
    approval: str | None = None
    topic: Topic | None = None
    """Which of the above was mentioned most recently."""
    _history: list[str] = field(default_factory=list, repr=False)

    def observe(self, match: IntentMatch) -> None:
        """Remember the bot, schedule, reminder or approval a match was about."""
        known = NAMED_ARGUMENT.get(match.tool)
        if known is None:
            return
        topic, argument = known
        value = match.arguments.get(argument)
        if not isinstance(value, str) or not value:
            return
        setattr(self, topic, value)
        self.topic = topic

    def get(self, topic: Topic) -> str | None:
        """The last thing of this kind mentioned, if any."""
        value: str | None = getattr(self, topic)
        return value

    def key(self) -> tuple[str | None, ...]:
        """A hashable form, for caches."""
        return self.bot, self.schedule, self.reminder, self.approval, self.topic

    def copy(self) -> ConversationContext:
        """An independent copy."""
        return ConversationContext(self.bot, self.schedule, self.reminder, self.approval, self.topic)
