"""What recognition returns, and the facts the caller passes in: live lists and conversation context."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tools import LIVE_KINDS, EntityKind, ToolDefinition

__all__ = ["ConversationContext", "IntentMatch", "LiveLists", "Mention", "Topic"]

Topic = EntityKind
"""What a conversation can be about: a bot, a schedule, a reminder or an approval."""


@dataclass(frozen=True, slots=True)
class Mention:
    """The live thing a match names, read from its tool's definition: kind, name (or id), and whether the
    call creates it (a new schedule's name is no reference to check)."""

    kind: EntityKind
    name: str
    creates: bool = False

    @classmethod
    def of(cls, tool: ToolDefinition, arguments: Mapping[str, Any]) -> Mention | None:
        """What a call of ``tool`` with ``arguments`` names, if anything."""
        entity = tool.entity
        value = arguments.get(entity.argument) if entity is not None else None
        if entity is None or not isinstance(value, str) or not value:
            return None
        return cls(entity.kind, value, entity.creates)


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
    mention: Mention | None = None
    """The bot, schedule, reminder or approval the call names (``Mention.of`` its tool), if any."""
    problem: str | None = None
    """Why the command cannot run as said, as a sentence for the person (a fact longer than a fact may
    be); the arguments are then as heard, not validated, and the call must not be made."""

    def to_json(self) -> dict[str, Any]:
        """The stable JSON form: tool, arguments, confidence, source (and the problem, if there is one)."""
        found = {
            "tool": self.tool,
            "arguments": self.arguments,
            "confidence": round(self.confidence, 3),
            "source": self.source,
        }
        if self.problem is not None:
            found["problem"] = self.problem
        return found


@dataclass
class LiveLists:
    """Names known at match time (fetched from storage by the caller), one field per kind in
    ``tools.LIVE_KINDS``, named by its plural."""

    bots: Sequence[str] = ()
    schedules: Sequence[str] = ()
    reminders: Sequence[str] = ()

    def names(self, kind: EntityKind) -> Sequence[str]:
        """The known names of ``kind``; none for a kind that has no live list (approvals)."""
        if kind not in LIVE_KINDS:
            return ()
        names: Sequence[str] = getattr(self, kind.plural)
        return names

    def key(self) -> tuple[tuple[str, ...], ...]:
        """A hashable form, for caches: the names of each kind of ``LIVE_KINDS``, in that order."""
        return tuple(tuple(self.names(kind)) for kind in LIVE_KINDS)


@dataclass
class ConversationContext:
    """What the conversation talked about last, so "stop it" or "show its logs" can be resolved: one field
    per ``EntityKind``, named by its value."""

    bot: str | None = None
    schedule: str | None = None
    reminder: str | None = None
    approval: str | None = None
    topic: Topic | None = None
    """Which of the above was mentioned most recently."""

    def observe(self, match: IntentMatch) -> None:
        """Remember the bot, schedule, reminder or approval a match was about."""
        if match.mention is None:
            return
        setattr(self, match.mention.kind.value, match.mention.name)
        self.topic = match.mention.kind

    def get(self, topic: Topic) -> str | None:
        """The last thing of this kind mentioned, if any."""
        value: str | None = getattr(self, EntityKind(topic).value)
        return value

    def key(self) -> tuple[str | None, ...]:
        """A hashable form, for caches."""
        return (*(self.get(kind) for kind in EntityKind), self.topic)

    def copy(self) -> ConversationContext:
        """An independent copy."""
        return ConversationContext(**{kind.value: self.get(kind) for kind in EntityKind}, topic=self.topic)
