"""Turning a template match's slots into a tool's typed arguments.

Slot names in the templates are the tools' argument names, plus a few composite slots that hold two
arguments in one stretch of words (``text_due``: a reminder's text and its time; ``target_when``: a
schedule's command and its recurrence). A slot value that starts with "@" is a reference ("it",
"that one") resolved from the conversation context. How a wildcard slot's words become an argument
follows from the tool's definition: free text is kept as said, so is a new name; a live thing is named
the way its kind is (a short name, words from its text, an id); a time or a recurrence is parsed;
anything else is an id (one word).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hassil import RecognizeResult
from hassil.models import MatchEntity
from pydantic import AwareDatetime

from intents.models import ConversationContext, Topic
from intents.normalize import Utterance
from intents.timeparse import (
    moment_after,
    parse_duration,
    parse_moment,
    parse_recurrence,
    split_moment,
    split_recurrence,
)
from tools import EntityKind, Recurrence, ToolDefinition
from tools.facts import value_types

__all__ = ["COMPOSITE", "Built", "SlotError", "SlotInput", "build_arguments", "slot_problem"]

COMPOSITE: dict[str, tuple[str, str]] = {"text_due": ("text", "due"), "target_when": ("target", "when")}
"""Slots holding two arguments in one stretch of words -> the arguments they fill."""

_REFS: dict[str, Topic] = {f"@{kind.value}": kind for kind in EntityKind}
_MOMENTS = (datetime, AwareDatetime)
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


def slot_problem(tool: ToolDefinition, slot: str) -> str | None:
    """Why a template slot of ``tool`` can give no argument, or None when it can."""
    arguments = tool.input_model.model_fields
    needed = COMPOSITE.get(slot, (slot,))
    missing = [name for name in needed if name not in arguments]
    if missing:
        return f"{tool.name} has no argument {' or '.join(repr(name) for name in missing)}"
    return None


def build_arguments(result: RecognizeResult, tool: ToolDefinition, slots: SlotInput) -> Built | None:
    """Typed arguments for ``tool`` from its template match, or None when a slot cannot be understood."""
    built = Built(arguments={})
    strict = bool((result.intent_metadata or {}).get("target_must_be_command"))
    from_now = bool((result.intent_metadata or {}).get("due_from_now"))
    for entity in result.entities_list:
        if from_now and entity.name == "due":
            if not _from_now(slots, built, entity.name, *(_words(entity, slots.utterance) or (0, 0))):
                return None
            continue
        if strict and entity.name == "target_when":
            if not _target_when(slots, built, entity.name, *(_words(entity, slots.utterance) or (0, 0))):
                return None
            if built.confidence < 1.0:
                return None
            continue
        if not _apply(entity, tool, slots, built):
            return None
    return built


def _apply(entity: MatchEntity, tool: ToolDefinition, slots: SlotInput, built: Built) -> bool:
    name, value = entity.name, entity.value
    if isinstance(value, str) and value in _REFS:
        topic = _REFS[value]
        resolved = slots.context.get(topic)
        if resolved is None:
            return False
        built.arguments[name] = resolved
        built.references.append(topic)
        built.confidence = min(built.confidence, FROM_CONTEXT)
        return True
    if not entity.is_wildcard:
        # list values are typed already (a name from a live list, a number, ``approve: true``); the
        # tool's input model checks them
        built.arguments[name] = value
        return True
    span = _words(entity, slots.utterance)
    if span is None:
        return False
    return _wildcard(tool, name)(slots, built, name, *span)


Builder = Callable[["SlotInput", Built, str, int, int], bool]


def _wildcard(tool: ToolDefinition, name: str) -> Builder:
    """How the words of a wildcard slot become the argument ``name`` of ``tool``."""
    if name == "text_due":
        return _text_due
    if name == "target_when":
        return _target_when
    if name in tool.free_text:
        return _free_text
    entity = tool.entity
    if entity is not None and entity.argument == name:
        if entity.creates:
            return _new_name
        return {"name": _unlisted_name, "words": _free_text, "id": _identifier}[entity.kind.named_by]
    field_info = tool.input_model.model_fields.get(name)
    if field_info is None:
        raise SlotError(f"{tool.name} has no argument {name!r} for a slot to fill")
    kinds = value_types(field_info.annotation)
    if kinds and kinds <= set(_MOMENTS):
        return _moment
    if kinds == {Recurrence}:
        return _recurrence
    return _identifier


def _free_text(slots: SlotInput, built: Built, name: str, start: int, end: int) -> bool:
    utterance = slots.utterance
    if all(word in _PRONOUNS for word in utterance.words[start:end]):
        return False
    text = utterance.original_text(start, end)
    if not text:
        return False
    built.free_text += 1
    built.arguments[name] = text
    return True


def _moment(slots: SlotInput, built: Built, name: str, start: int, end: int) -> bool:
    moment = parse_moment(slots.utterance.words[start:end], slots.now)
    if moment is None:
        return False
    built.arguments[name] = moment
    return True


def _from_now(slots: SlotInput, built: Built, name: str, start: int, end: int) -> bool:
    """A duration read as the moment it ends ("a timer for 10 minutes"): templates say so with the
    metadata ``due_from_now``."""
    delta = parse_duration(slots.utterance.words[start:end])
    if delta is None:
        return False
    built.arguments[name] = moment_after(slots.now, delta)
    return True


def _recurrence(slots: SlotInput, built: Built, name: str, start: int, end: int) -> bool:
    recurrence = parse_recurrence(slots.utterance.words[start:end], slots.now)
    if recurrence is None:
        return False
    built.arguments[name] = recurrence
    return True


def _new_name(slots: SlotInput, built: Built, name: str, start: int, end: int) -> bool:
    """The name of a thing being created: as said."""
    built.arguments[name] = " ".join(slots.utterance.words[start:end])
    return True


def _identifier(slots: SlotInput, built: Built, name: str, start: int, end: int) -> bool:
    """An id read off a screen ("3f2a9c", or spelt "3 f 2 a"): one word, or short pieces run together."""
    words = slots.utterance.words[start:end]
    if all(word in _PRONOUNS for word in words) or (len(words) > 1 and not all(len(w) <= 2 for w in words)):
        return False
    built.arguments[name] = "".join(words)
    return True


def _unlisted_name(slots: SlotInput, built: Built, name: str, start: int, end: int) -> bool:
    """A bot or schedule name that is not in the live list: short, and not a determiner."""
    words = slots.utterance.words[start:end]
    if not words or len(words) > _MAX_NAME_WORDS or words[0] in _NOT_A_NAME:
        return False
    built.arguments[name] = " ".join(words)
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


def _text_due(slots: SlotInput, built: Built, name: str, start: int, end: int) -> bool:
    utterance = slots.utterance
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


def _target_when(slots: SlotInput, built: Built, name: str, start: int, end: int) -> bool:
    utterance = slots.utterance
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
