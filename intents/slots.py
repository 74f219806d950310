"""Turning a template match's slots into a tool's typed arguments.

Slot names in the templates are the tools' argument names, plus a few composite slots that hold two
arguments in one stretch of words (``text_due``: a reminder's text and its time; ``target_when``: a
schedule's command and its recurrence). A slot value that starts with "@" is a reference ("it",
"that one") resolved from the conversation context.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hassil import RecognizeResult
from hassil.models import MatchEntity

from intents.models import ConversationContext, Topic
from intents.normalize import Utterance
from intents.timeparse import parse_moment, parse_recurrence, split_moment, split_recurrence

__all__ = ["KNOWN", "Built", "SlotError", "SlotInput", "build_arguments"]

FREE_TEXT = frozenset({"fact", "query", "content", "title", "reason", "text", "target"})
COMPOSITE = frozenset({"text_due", "target_when"})
KNOWN = (
    FREE_TEXT | COMPOSITE | {"due", "when", "name", "new_name", "reminder", "id", "approve", "lines", "limit"}
)

_REFS: dict[str, Topic] = {
    "@bot": "bot",
    "@schedule": "schedule",
    "@reminder": "reminder",
    "@approval": "approval",
}
_LEADING_LINKS = {"to", "that", "about", "of", "for"}
_NOT_A_NAME = {
    "the",
    "a",
    "an",
    "my",
    "our",
    "this",
    "that",
    "all",
    "every",
    "each",
    "some",
    "any",
    "it",
    "its",
}
_MAX_NAME_WORDS = 3
_PRONOUNS = {"it", "that", "this", "them", "one", "those", "these", "the", "a", "an", "its", "him", "her"}

# Confidence for matches that needed a guess.
UNLISTED_NAME = 0.9
FROM_CONTEXT = 0.95
UNKNOWN_TARGET = 0.9


class SlotError(ValueError):
    """A template declares a slot no argument builder knows."""


@dataclass
class Built:
    """Arguments built from one template match, and how sure we are of them."""

    arguments: dict[str, Any]
    confidence: float = 1.0
    free_text: int = 0
    """How many free-text slots the match used (fewer is a tighter match)."""
    references: list[Topic] = field(default_factory=list)


@dataclass(frozen=True)
class SlotInput:
    """Everything building needs besides the match itself."""

    utterance: Utterance
    context: ConversationContext
    now: datetime
    is_command: Callable[[Sequence[str]], bool]


def _words(entity: MatchEntity, utterance: Utterance) -> tuple[int, int] | None:
    if entity.text_span is None:
        return None
    start, end = entity.text_span
    if end <= start:
        return None
    first = utterance.word_index(start)
    last = utterance.word_index(end - 1) + 1
    return (first, last) if first < last <= len(utterance) else None


def _strip_links(utterance: Utterance, start: int, end: int) -> int:
    if start < end - 1 and utterance.words[start] in _LEADING_LINKS:
        return start + 1
    return start


def build_arguments(result: RecognizeResult, slots: SlotInput) -> Built | None:
    """Typed arguments for the matched tool, or None when a slot cannot be understood."""
    built = Built(arguments={})
    strict = bool((result.intent_metadata or {}).get("target_must_be_command"))
    for entity in result.entities_list:
        if strict and entity.name == "target_when":
            if not _target_when(slots.utterance, *(_words(entity, slots.utterance) or (0, 0)), slots, built):
                return None
            if built.confidence < 1.0:
                return None
            continue
        if not _apply(entity, slots, built):
            return None
    return built


def _apply(entity: MatchEntity, slots: SlotInput, built: Built) -> bool:
    name, value = entity.name, entity.value
    utterance = slots.utterance
    if isinstance(value, str) and value in _REFS:
        topic = _REFS[value]
        resolved = slots.context.get(topic)
        if resolved is None:
            return False
        built.arguments[name] = resolved
        built.references.append(topic)
        built.confidence = min(built.confidence, FROM_CONTEXT)
        return True
    if name == "approve":
        built.arguments[name] = bool(value)
        return True
    if name in ("lines", "limit"):
        built.arguments[name] = int(value) if isinstance(value, int | float) else value
        return True
    span = _words(entity, utterance) if entity.is_wildcard else None
    if not entity.is_wildcard:
        built.arguments[name] = value
        return True
    if span is None:
        return False
    start, end = span
    words = utterance.words[start:end]
    if name in FREE_TEXT or name == "reminder":
        if all(word in _PRONOUNS for word in words):
            return False
        built.free_text += 1
        text = utterance.original_text(start, end)
        if not text:
            return False
        built.arguments[name] = text
        return True
    if name == "due":
        moment = parse_moment(words, slots.now)
        if moment is None:
            return False
        built.arguments[name] = moment
        return True
    if name == "when":
        recurrence = parse_recurrence(words, slots.now)
        if recurrence is None:
            return False
        built.arguments[name] = recurrence
        return True
    if name == "text_due":
        return _text_due(utterance, start, end, slots, built)
    if name == "target_when":
        return _target_when(utterance, start, end, slots, built)
    if name == "name":
        return _unlisted_name(words, built)
    if name == "new_name":
        built.arguments["name"] = " ".join(words)
        return True
    if name == "id":
        if all(word in _PRONOUNS for word in words) or (
            len(words) > 1 and not all(len(word) <= 2 for word in words)
        ):
            return False
        built.arguments[name] = "".join(words)
        return True
    raise SlotError(f"no argument builder for slot {name!r}")


def _unlisted_name(words: Sequence[str], built: Built) -> bool:
    """A bot or schedule name that is not in the live list: short, and not a determiner."""
    if not words or len(words) > _MAX_NAME_WORDS or words[0] in _NOT_A_NAME:
        return False
    built.arguments["name"] = " ".join(words)
    built.confidence = min(built.confidence, UNLISTED_NAME)
    return True


def _around(utterance: Utterance, start: int, end: int, inner_start: int, inner_end: int) -> tuple[int, int]:
    """The words of ``start..end`` besides a time phrase found at ``inner_start..inner_end`` (relative):
    after it when it leads the span, else before it; linking words ("to", "that") stripped."""
    if inner_start == 0:
        rest_start, rest_end = start + inner_end, end
    else:
        rest_start, rest_end = start, start + inner_start
    return _strip_links(utterance, rest_start, rest_end), rest_end


def _text_due(utterance: Utterance, start: int, end: int, slots: SlotInput, built: Built) -> bool:
    found = split_moment(utterance.words[start:end], slots.now)
    if found is None:
        return False
    time_start, time_end, moment = found
    text_start, text_end = _around(utterance, start, end, time_start, time_end)
    text = utterance.original_text(text_start, text_end)
    if not text:
        return False
    built.arguments["text"] = text
    built.arguments["due"] = moment
    built.free_text += 1
    return True


def _target_when(utterance: Utterance, start: int, end: int, slots: SlotInput, built: Built) -> bool:
    found = split_recurrence(utterance.words[start:end], slots.now)
    if found is None:
        return False
    when_start, when_end, recurrence = found
    target_start, target_end = _around(utterance, start, end, when_start, when_end)
    target = utterance.original_text(target_start, target_end)
    if not target:
        return False
    if not slots.is_command(utterance.words[target_start:target_end]):
        built.confidence = min(built.confidence, UNKNOWN_TARGET)
    built.arguments["target"] = target
    built.arguments["when"] = recurrence
    built.free_text += 1
    return True
