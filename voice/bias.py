"""Biasing recognition toward what people can say here: the commands' words and the live names.

Whisper gets the names as its ``initial_prompt`` (text it reads before decoding); Vosk, in command
mode, gets a grammar: the only words it may output. Pure functions over data the caller passes in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Bias", "template_vocabulary"]

_WORD = re.compile(r"[a-z][a-z'\-]*")
_SYNTAX = re.compile(r"\{[^}]*\}|<[^>]*>")
_COMMON = frozenset(
    [
        "a",
        "an",
        "the",
        "my",
        "our",
        "me",
        "us",
        "i",
        "you",
        "to",
        "of",
        "for",
        "in",
        "on",
        "at",
        "is",
        "are",
        "be",
        "it",
        "that",
        "this",
        "what",
        "which",
        "do",
        "does",
        "show",
        "please",
        "can",
        "could",
        "would",
        "will",
        "with",
        "and",
        "or",
        "from",
        "about",
        "all",
        "any",
        "some",
        "how",
        "when",
        "where",
        "who",
        "get",
        "give",
        "tell",
        "set",
        "let",
        "see",
        "make",
        "want",
        "like",
        "need",
        "have",
        "has",
        "had",
        "was",
        "were",
        "am",
        "not",
        "no",
        "yes",
        "up",
        "down",
        "out",
        "off",
        "now",
        "then",
        "also",
        "again",
        "there",
        "here",
        "its",
        "their",
        "them",
        "him",
        "her",
        "one",
        "just",
    ]
)
MAX_NAMES = 40
"""Whisper reads the bias as a prompt; a long prompt slows decoding and invites hallucination."""


@dataclass(frozen=True)
class Bias:
    """Names and words to favour.

    Whisper gets only the live names, as a bare list ("backup, crawler, mailer"), as its prompt. Measured
    on the spoken-command set (bench/voice.py): a prompt of example commands, or names in sentences
    ("Bots: backup, crawler."), made Whisper continue past the end of speech ("… the backup bot. You",
    "Thank you for watching"), which doubled decoding time and swapped verbs; the bare list fixes the words
    a general model knows least without those costs. Vosk gets the names and the commands' vocabulary as
    its grammar.
    """

    names: tuple[str, ...] = ()
    vocabulary: tuple[str, ...] = ()

    def prompt(self) -> str | None:
        """The Whisper prompt: the live names, comma-separated, at most ``MAX_NAMES`` of them."""
        unique = list(dict.fromkeys(n.strip() for n in self.names if n.strip()))[:MAX_NAMES]
        return ", ".join(unique) or None

    def grammar(self) -> list[str]:
        """The Vosk grammar: every word it may output, plus ``[unk]`` for anything else."""
        words: set[str] = set()
        for item in (*self.names, *self.vocabulary, *_COMMON):
            words.update(_WORD.findall(item.lower().replace("-", " ")))
        return [*sorted(words), "[unk]"]


def template_vocabulary(templates: Mapping[str, Any], *, skip: Iterable[str] = _COMMON) -> tuple[str, ...]:
    """The literal words of hassil sentence templates and expansion rules, the most used first.

    The words most templates share are the commands' core vocabulary ("remind", "bot", "schedule"), so
    they go first and survive the hotword cap; everyday words are left out (``skip``).
    """
    counts: dict[str, int] = {}
    skip = frozenset(skip)
    for text in _template_texts(templates):
        for word in set(_WORD.findall(_SYNTAX.sub(" ", text.lower()))):
            if word not in skip and len(word) > 2:
                counts[word] = counts.get(word, 0) + 1
    return tuple(sorted(counts, key=lambda w: (-counts[w], w)))


def _template_texts(templates: Mapping[str, Any]) -> Iterable[str]:
    for rule in (templates.get("expansion_rules") or {}).values():
        yield str(rule)
    for intent in (templates.get("intents") or {}).values():
        for block in intent.get("data", []) if isinstance(intent, dict) else []:
            yield from (str(s) for s in block.get("sentences", []))
