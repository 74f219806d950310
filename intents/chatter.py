"""Chatter: greetings, thanks and small talk, which are no command and get a short friendly reply.

The sentences live in ``intents/chatter.yaml`` (hassil's template language, one intent per kind of
chatter, with its replies). A whole utterance one of them says is chatter: the recognizer then returns no
command on either path, so "how's it going" is never "corrected" into a bot's status, and the turn
answers it. Every utterance is checked, so the sentences are compiled into one regular expression per
kind (microseconds a check) instead of being matched by hassil (milliseconds).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from hassil import Intents
from hassil.expression import Alternative, Group, ListReference, RuleReference, Sentence, TextChunk
from hassil.intents import WildcardSlotList

from intents.normalize import Utterance

__all__ = ["CHATTER_PATH", "Chat", "Chatter", "load_chatter"]

CHATTER_PATH = Path(__file__).with_name("chatter.yaml")


@dataclass(frozen=True, slots=True)
class Chat:
    """An utterance that is chatter: its kind ("greeting", "thanks", ...) and a short reply to it."""

    kind: str
    reply: str


def load_chatter(path: Path = CHATTER_PATH) -> dict[str, Any]:
    """The chatter sentences and replies (hassil's dict format, ``replies`` beside each ``data``)."""
    with path.open(encoding="utf-8") as handle:
        data: dict[str, Any] = yaml.safe_load(handle) or {}
    return data


class Chatter:
    """Tells chatter from commands; pure after ``__init__`` (sentences compiled once)."""

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        data = data if data is not None else load_chatter()
        intents = Intents.from_dict(data)
        self._kinds: list[tuple[Chat, re.Pattern[str]]] = []
        for kind, intent in intents.intents.items():
            replies = (data["intents"][kind] or {}).get("replies")
            if not replies:
                raise ValueError(f"chatter kind {kind!r} has no replies")
            sentences = [
                _pattern(sentence.expression, intents, block.expansion_rules)
                for block in intent.data
                for sentence in block.sentences
            ]
            self._kinds.append((Chat(kind, str(replies[0])), re.compile("(?:" + "|".join(sentences) + ")")))

    def classify(self, utterance: Utterance) -> Chat | None:
        """The kind of chatter the whole (normalised) utterance is, or None when it may be a command."""
        if not utterance.words:
            return None
        text = " " + utterance.text
        for chat, pattern in self._kinds:
            if pattern.fullmatch(text):
                return chat
        return None


def _pattern(expression: Any, intents: Intents, rules: dict[str, Sentence], depth: int = 0) -> str:
    """A regular expression for what a template expression says, over " word word ..." (each word led by
    a space); a wildcard list takes one or more words."""
    if depth > 20:
        raise ValueError("chatter rules refer to each other in a circle")
    if isinstance(expression, TextChunk):
        return "".join(" " + re.escape(word) for word in expression.text.split())
    if isinstance(expression, ListReference):
        slot_list = intents.slot_lists.get(expression.list_name)
        if not isinstance(slot_list, WildcardSlotList):
            raise ValueError(f"chatter may use only wildcard lists, not {expression.list_name!r}")
        return r"(?: \S+)+?"
    if isinstance(expression, RuleReference):
        rule = rules.get(expression.rule_name) or intents.expansion_rules.get(expression.rule_name)
        if rule is None:
            raise ValueError(f"chatter refers to an unknown rule <{expression.rule_name}>")
        return _pattern(rule.expression, intents, rules, depth + 1)
    if isinstance(expression, Alternative):
        options = "|".join(_pattern(item, intents, rules, depth) for item in expression.items)
        return f"(?:{options})" + ("?" if expression.is_optional else "")
    if isinstance(expression, Group):  # a sequence (a permutation has no place in chatter)
        return "".join(_pattern(item, intents, rules, depth) for item in expression.items)
    raise ValueError(f"chatter cannot use {type(expression).__name__}")
