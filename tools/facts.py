"""Facts about tool arguments that other packages need, written as markers beside the argument's type.

A marker goes into the argument's ``typing.Annotated`` metadata, on the field or on a shared type alias
(``BotName`` names a bot wherever it is used, every ``Query`` is private)::

    query: Annotated[str, PRIVATE] = Field(description="What to search for.")
    name: Annotated[str, Names(EntityKind.BOT)] = Field(description="The bot's name.")

Pydantic keeps such objects in ``FieldInfo.metadata`` (or inside the annotation, under ``X | None``) and
leaves them out of the JSON schema, so MCP clients and the LLM see the same schema as without them,
while everything else derives from the one input model: ``ToolDefinition`` reads the markers into
``ArgumentFacts`` once, and the audit, the policy and the recognizer ask it. Free text needs no marker:
it is every string argument that names no live thing. Facts about a whole tool (it decides approvals,
it embeds text) are fields of ``ToolDefinition``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

__all__ = [
    "LIVE_KINDS",
    "PRIVATE",
    "ArgumentFacts",
    "EntityArgument",
    "EntityKind",
    "Names",
    "Private",
    "private_digest",
    "value_types",
]


class EntityKind(StrEnum):
    """The live things an argument can name. Every other list of them (live name lists, the conversation
    context, "it"/"that one" references) derives from this one."""

    BOT = "bot"
    SCHEDULE = "schedule"
    REMINDER = "reminder"
    APPROVAL = "approval"

    @property
    def plural(self) -> str:
        """The plural, as in ``LiveLists.bots``: "bots"."""
        return f"{self.value}s"

    @property
    def live_list(self) -> str | None:
        """The sentence templates' slot list filled with this kind's names at match time, or None when
        the caller fetches none (approvals are named by an id read off a screen)."""
        return _LIVE_LISTS.get(self)

    @property
    def named_by(self) -> NamedBy:
        """How a person names one: bots and schedules by a short name, a reminder by words from its
        text, an approval by its id."""
        return _NAMED_BY[self]


NamedBy = Literal["name", "words", "id"]

_LIVE_LISTS = {EntityKind.BOT: "bot", EntityKind.SCHEDULE: "schedule", EntityKind.REMINDER: "reminder_name"}
_NAMED_BY: dict[EntityKind, NamedBy] = {
    EntityKind.BOT: "name",
    EntityKind.SCHEDULE: "name",
    EntityKind.REMINDER: "words",
    EntityKind.APPROVAL: "id",
}

LIVE_KINDS: tuple[EntityKind, ...] = tuple(kind for kind in EntityKind if kind.live_list)
"""The kinds whose names the caller fetches from storage at match time."""


@dataclass(frozen=True, slots=True)
class Private:
    """The argument is written to the audit trail as a hash only (what a person searches for)."""


@dataclass(frozen=True, slots=True)
class Names:
    """The argument names a live thing of ``kind``; ``creates`` when the call makes a new one with that
    name instead of referring to one that exists."""

    kind: EntityKind
    creates: bool = False


PRIVATE = Private()


@dataclass(frozen=True, slots=True)
class EntityArgument:
    """The argument of a tool that names a live thing."""

    argument: str
    kind: EntityKind
    creates: bool = False


@dataclass(frozen=True, slots=True)
class ArgumentFacts:
    """What a tool's input model says about its arguments beyond their types."""

    private: frozenset[str] = frozenset()
    """Arguments the audit trail keeps as a hash only (marked ``PRIVATE``)."""
    free_text: frozenset[str] = frozenset()
    """Arguments a person words freely: every string argument that names no live thing."""
    entity: EntityArgument | None = None
    """The argument that names a live thing (marked ``Names``), if any."""

    @classmethod
    def of(cls, model: type[BaseModel]) -> ArgumentFacts:
        """Read the markers of every field of ``model``; a tool names at most one live thing."""
        private: set[str] = set()
        free_text: set[str] = set()
        entities: list[EntityArgument] = []
        for name, field in model.model_fields.items():
            markers = list(_markers(field))
            named = [marker for marker in markers if isinstance(marker, Names)]
            entities += [EntityArgument(name, marker.kind, marker.creates) for marker in named]
            if any(isinstance(marker, Private) for marker in markers):
                private.add(name)
            if not named and _is_text(field):
                free_text.add(name)
        if len(entities) > 1:
            raise ValueError(f"{model.__name__} names more than one live thing: {entities}")
        return cls(frozenset(private), frozenset(free_text), entities[0] if entities else None)

    def auditable(self, arguments: Mapping[str, Any], key: bytes) -> dict[str, Any]:
        """``arguments`` as the audit trail keeps them: private ones as their keyed hash (``key``: the
        server's audit key)."""
        return {
            name: private_digest(value, key) if name in self.private else value
            for name, value in arguments.items()
        }


def private_digest(value: Any, key: bytes) -> str:
    """How the audit trail keeps private text: ``"hmac-sha256:"`` and the hex HMAC-SHA256 of its text
    under the server's audit ``key``. The same text and key give the same digest, so whoever holds the key
    can check whether a known text was used; without the key even a short text (a PIN) cannot be guessed
    by hashing candidates. Rows written before keyed hashes keep their plain ``"sha256:"`` digests."""
    if not key:
        raise ValueError("private_digest needs the audit key")
    return "hmac-sha256:" + hmac.new(key, str(value).encode(), hashlib.sha256).hexdigest()


def _markers(field: FieldInfo) -> Iterator[object]:
    """The field's metadata, and the metadata of ``Annotated`` types inside its annotation
    (``BotName | None`` keeps ``BotName``'s markers there)."""
    yield from field.metadata
    stack: list[Any] = [field.annotation]
    while stack:
        annotation = stack.pop()
        if get_origin(annotation) is Annotated:
            inner, *metadata = get_args(annotation)
            yield from metadata
            stack.append(inner)
        else:
            stack.extend(get_args(annotation))


def _is_text(field: FieldInfo) -> bool:
    """True for ``str`` and ``str | None`` (with or without constraints)."""
    types = value_types(field.annotation)
    return bool(types) and types <= {str}


def value_types(annotation: Any) -> set[Any]:
    """The types a value of ``annotation`` can have besides None, markers and constraints left out:
    ``Annotated[str, ...] | None`` -> ``{str}``."""
    if get_origin(annotation) is Annotated:
        return value_types(get_args(annotation)[0])
    if get_origin(annotation) in (Union, UnionType):
        return set().union(*(value_types(arg) for arg in get_args(annotation) if arg is not NoneType))
    return {annotation}
