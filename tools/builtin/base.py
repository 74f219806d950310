"""Shared building blocks of the built-in tools: input/output bases and bounded field types."""

from __future__ import annotations

import re
from abc import abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from tools.facts import PRIVATE, EntityKind, Names

__all__ = [
    "ApprovalId",
    "BotName",
    "NewScheduleName",
    "Query",
    "ScheduleName",
    "ShortText",
    "Table",
    "ToolInput",
    "ToolOutput",
    "second_person",
    "sentence",
    "when_text",
]

ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
"""A one-line piece of text a person typed or said (a fact, a reminder, a command sentence): free text."""

Query = Annotated[ShortText, PRIVATE]
"""Words to search for; private: the audit trail keeps a hash only."""

_NAME = StringConstraints(
    strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.\-]*$"
)

BotName = Annotated[str, _NAME, Names(EntityKind.BOT)]
"""A bot's name as people say it: letters, digits, spaces, '_', '.', '-' (no shell text such as ';', '$',
'/' or backticks). The bots agent accepts only registered names: letters, digits, '_' and '-'."""

ScheduleName = Annotated[str, _NAME, Names(EntityKind.SCHEDULE)]
"""An existing schedule's name; the same alphabet as bot names."""

NewScheduleName = Annotated[str, _NAME, Names(EntityKind.SCHEDULE, creates=True)]
"""The name of a schedule being created."""

ApprovalId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$"),
    Names(EntityKind.APPROVAL),
]
"""The id of a pending approval (a UUID or a short prefix of one)."""


class ToolInput(BaseModel):
    """Base of every tool's arguments: unknown arguments are an error, strings are stripped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ToolOutput(BaseModel):
    """Base of every tool's structured result; ``summary()`` is the one-line reply a person sees."""

    model_config = ConfigDict(extra="forbid")

    @abstractmethod
    def summary(self) -> str:
        """The one-line sentence to show or speak to a person."""

    def table(self) -> Table | None:
        """The result as a small table for front doors that show one (under the summary), or None."""
        return None


@dataclass(frozen=True, slots=True)
class Table:
    """A small table of text cells; each front door draws it its own way (Markdown, a terminal table)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    def markdown(self) -> str:
        """The table in GitHub-flavoured Markdown, '|' in cells escaped."""

        def line(cells: tuple[str, ...]) -> str:
            return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

        return "\n".join(
            [line(self.columns), line(tuple("---" for _ in self.columns)), *map(line, self.rows)]
        )


_SWAPS = {
    "i": "you",
    "me": "you",
    "my": "your",
    "mine": "yours",
    "myself": "yourself",
    "am": "are",
    "i'm": "you're",
    "i've": "you've",
    "i'll": "you'll",
    "i'd": "you'd",
    "we": "you",
    "our": "your",
    "ours": "yours",
    "us": "you",
}
_WORD = re.compile(r"[A-Za-z']+")


def second_person(text: str) -> str:
    """Turn a fact a person said about themselves into one said to them ("my editor" -> "your editor")."""

    def swap(match: re.Match[str]) -> str:
        word = match.group(0)
        replaced = _SWAPS.get(word.lower())
        if replaced is None:
            return word
        return replaced.capitalize() if word[0].isupper() and word.lower() != "i" else replaced

    return _WORD.sub(swap, text)


def sentence(text: str) -> str:
    """Capitalise the first letter and end with a full stop unless the text ends a sentence already."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def when_text(moment: datetime) -> str:
    """A short human rendering of a moment, e.g. "Thu 12 Jun at 17:00"."""
    return moment.strftime("%a %d %b at %H:%M").replace(" 0", " ")
