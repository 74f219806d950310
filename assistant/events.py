"""A turn and the typed events ``Kommandant.handle`` yields; every front door renders these its own way."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from intents import IntentMatch
    from voice import Transcript

Role = Literal["admin", "operator", "viewer"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Turn:
    """One utterance from a person through a front door.

    ``user``, ``channel`` and ``role`` have no defaults: a front door that forgets who is asking, or with
    which rights, is a type error, never an admin.
    """

    text: str
    user: str
    channel: str
    role: Role
    thread: str | None = None
    speech_confidence: float | None = None
    """Spoken turns: the recogniser's confidence in the transcript (0..1); None for typed text."""
    llm_model: str | None = None
    """The LLM the person picked for this turn's fallback (web chat setting): None uses the configured
    ``llm_model``; ``""`` means templates only (no LLM call)."""
    intents: tuple[IntentMatch, ...] | None = None
    """Commands understood before (a schedule's stored command): the turn runs these instead of parsing
    ``text``, which then only describes them."""
    idempotency_key: str | None = None
    """A key under which the turn's calls act once (a scheduled occurrence): each call's key is this key
    with its tool and arguments, so a repeated turn or a redelivered call never acts twice."""

    def call_key(self, tool: str, arguments: dict[str, Any]) -> str | None:
        """The idempotency key of this turn's call of ``tool`` with ``arguments`` (None: a fresh key)."""
        if self.idempotency_key is None:
            return None
        digest = hashlib.sha256(json.dumps(arguments, sort_keys=True, default=str).encode()).hexdigest()
        return f"{self.idempotency_key}:{tool}:{digest[:16]}"


@dataclass(frozen=True, slots=True)
class _Event:
    def to_json(self) -> dict[str, Any]:
        data = {"event": type(self).__name__}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            data[f.name] = value.isoformat() if isinstance(value, datetime) else value
        return data


@dataclass(frozen=True, slots=True)
class IntentRecognized(_Event):
    """The utterance (or a part of it) was understood as a call of ``tool``."""

    tool: str
    arguments: dict[str, Any]
    confidence: float
    source: str
    text: str = ""


@dataclass(frozen=True, slots=True)
class ApprovalRequired(_Event):
    """A dangerous tool waits for a person's decision (buttons, the tool that decides approvals, another
    channel)."""

    approval_id: str
    tool: str
    arguments: dict[str, Any]
    requested_by: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ApprovalResolved(_Event):
    """The approval was decided or expired."""

    approval_id: str
    tool: str
    status: str


@dataclass(frozen=True, slots=True)
class ToolStarted(_Event):
    call_id: str
    tool: str
    agent: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolFinished(_Event):
    call_id: str
    tool: str
    agent: str
    ok: bool
    text: str
    structured: dict[str, Any] | None
    duration_ms: float


@dataclass(frozen=True, slots=True)
class ReplyDelta(_Event):
    """A piece of the reply, to show as it arrives."""

    text: str


@dataclass(frozen=True, slots=True)
class ReplyDone(_Event):
    """The whole reply; the turn is over."""

    text: str
    suggestions: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Failed(_Event):
    """Something went wrong; ``message`` is a sentence for the person (the log has the details)."""

    message: str


@dataclass(frozen=True, slots=True)
class Heard:
    """A spoken turn's first event: the transcript, and the text the turn runs (normalised)."""

    transcript: Transcript
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"event": "Heard", "text": self.text, "transcript": self.transcript.to_json()}


Event = (
    IntentRecognized
    | ApprovalRequired
    | ApprovalResolved
    | ToolStarted
    | ToolFinished
    | ReplyDelta
    | ReplyDone
    | Failed
)
