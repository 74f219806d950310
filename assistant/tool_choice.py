"""Which tools the LLM's tool-choice request offers, and how they are written for the model.

Sending every tool's schema made the tool-choice prompt about 3,800 tokens: on a laptop's CPU, reading it
took longer than the whole fallback may. So the request carries only the few tools that could be meant:

- **Retrieval**: each tool is described by its model-facing description, its template examples and a
  few sentences rendered from its templates; their mean vector (from the same ``Embedder`` the
  knowledge base uses) stands for the tool. The utterance is embedded whole and by its first few words
  (the command in "note that the car is on level 3" comes first, and the free text would otherwise
  drown it); a tool scores its best cosine similarity to any of these, plus a bonus for each of its
  keywords (words its name, description and templates use and few other agents' tools do) found in
  the utterance (its words also count as the catalog words they stand for: "hourly" as "every", "scrap"
  as "cancel", "nudge" as "reminder"). The best ``MAX_TOOLS`` are offered. When none of them fits, the
  model is told to call no tool and answer as chat (the prompt in ``assistant.llm`` says so): that is
  the "none of these" path, and it also covers a question the retrieval had no tool for.
- **Compact, stable specs**: a short description (its first sentence, clipped) and an input schema
  without titles, constraints the arguments' validation enforces anyway, or ``$ref`` indirections. The
  offered tools keep catalog order and nothing per turn goes into them, so the same tools give the same
  bytes and a server's prompt cache is reused.

Pure: the catalog, the templates and the embedder are passed in; nothing here reads files or settings.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hassil import Intents
from hassil.expression import (
    Alternative,
    Expression,
    Group,
    ListReference,
    Permutation,
    RuleReference,
    TextChunk,
)
from hassil.intents import IntentData, RangeSlotList, TextSlotList, WildcardSlotList

from embeddings import Embedder
from intents.normalize import normalize
from intents.templates import examples_of, with_live_list_placeholders
from tools import Catalog, ToolDefinition

__all__ = [
    "MAX_TOOLS",
    "ToolIndex",
    "choose_tools",
    "compact_schema",
    "model_description",
    "query_views",
    "tool_sentences",
    "tool_specs",
]

MAX_TOOLS = 6
"""Most tools one tool-choice request offers."""
VIEW_WORDS = (3, 5)
"""Besides the whole utterance, its first this many words are embedded (when it is longer)."""
SENTENCES_PER_TEMPLATE = 1
"""Sentences rendered from each template line (random choices, fixed seed)."""
MAX_SENTENCES = 16
"""Most sentences describing one tool (its description and examples come first)."""
KEYWORD_WEIGHT = 0.3
"""Score a keyword found in the utterance adds, times its rarity: 1 / (agents whose tools use it) /
sqrt(tools that use it)."""
MAX_KEYWORD_AGENTS = 2
"""A word the tools of more agents than this use is no keyword."""
DESCRIPTION_CHARS = 90
"""A model-facing description is the tool's first sentence, clipped near this length."""
_STOP_TEXT = (
    "a an the my our your me us i you we it its to of for in on at is are am be do does what which who how "
    "when where that this these those there have has can could would will should with and or from about "
    "any all some no not just please one by as up out so"
)
_STOP = frozenset(_STOP_TEXT.split())
_DROPPED_KEYS = frozenset(
    {
        "title", "additionalProperties", "maxLength", "minLength", "pattern", "format", "examples",
        "minimum", "maximum", "maxItems", "minItems", "default",
    }
)  # fmt: skip
"""Schema keys left out for the model: titles are noise, the constraints are checked when the arguments
are validated (a call that breaks them is sent back once with the error), and defaults apply when an
argument is left out."""
_SAID_AS: Mapping[str, tuple[str, ...]] = {
    # a frequency word says "every ...": what only a recurring schedule takes ("hourly" = "every hour")
    **dict.fromkeys(
        ("hourly", "daily", "nightly", "weekly", "monthly", "yearly", "weekday", "weekend", "each",
         "regularly", "routinely", "periodically", "repeatedly", "recurring"),
        ("every",),
    ),
    # words for doing away with something the catalog says as cancel, delete, drop or remove
    **dict.fromkeys(
        ("scrap", "ditch", "axe", "nix", "scratch", "trash", "bin", "abandon", "erase", "purge", "wipe",
         "discard", "remove", "cancel", "delete"),
        ("cancel", "delete", "drop", "remove"),
    ),
    # everyday names for a reminder ("heads up" loses its plural "s" with the other words)
    **dict.fromkeys(("nudge", "poke", "shout", "buzz", "head", "heads"), ("reminder",)),
}  # fmt: skip
"""Words an utterance may use for words of the catalog's own vocabulary: the utterance's keywords are
looked up as themselves and as these (a person's "scrap the heads up" is the catalog's "cancel the
reminder"). General vocabulary, not any one sentence: a frequency, a removal, a reminder's names."""
_FIRST_SENTENCE = re.compile(r"^(.+?(?<!e\.g)(?<!i\.e)[.!?])(?:\s+[A-Z(]|$)")
"""The first sentence: up to a full stop before a capital or the end ("e.g." ends none)."""
ARGUMENT_CHARS = 80
"""An argument's description for the model is its first sentence, clipped near this length."""


# -- what the model sees ---------------------------------------------------------------------------------


def model_description(tool: ToolDefinition) -> str:
    """The tool's description for the model: its first sentence, cut at a clause near
    ``DESCRIPTION_CHARS`` when longer (the rest explains details a person reads in the catalog)."""
    return _clip(tool.description, DESCRIPTION_CHARS)


def compact_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """An input schema as the model needs it: ``$ref``s inlined, optional ``anyOf [X, null]`` as X, no
    titles, no top-level description (the tool's own says it), no constraints validation enforces."""
    definitions = schema.get("$defs", {})
    compact = _compact(schema, definitions)
    compact.pop("description", None)
    compact.pop("$defs", None)
    return compact


def _compact(node: Any, definitions: Mapping[str, Any]) -> Any:
    if isinstance(node, list):
        return [_compact(item, definitions) for item in node]
    if not isinstance(node, Mapping):
        return node
    if "$ref" in node:
        target = definitions.get(str(node["$ref"]).rsplit("/", 1)[-1], {})
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _compact(merged, definitions)
    options = node.get("anyOf")
    if isinstance(options, list):
        real = [o for o in options if not (isinstance(o, Mapping) and o.get("type") == "null")]
        if len(real) == 1:
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            return _compact({**real[0], **rest}, definitions)
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS or key == "$defs" or (key == "default" and value is None):
            continue
        if key == "description" and isinstance(value, str):
            result[key] = _clip(value, ARGUMENT_CHARS)
        elif key == "properties" and isinstance(value, Mapping):  # names here are arguments, kept whole
            required = set(node.get("required", ()))
            result[key] = {
                name: _compact(prop, definitions)
                for name, prop in value.items()
                if name in required or not _structured_list(prop, definitions)
            }
        else:
            result[key] = _compact(value, definitions)
    return result


def _clip(text: str, limit: int) -> str:
    """The first sentence of ``text``, cut at a clause or word near ``limit`` characters."""
    text = " ".join(text.split())
    found = _FIRST_SENTENCE.match(text)
    text = found.group(1) if found else text
    if len(text) <= limit:
        return text
    for mark in (" (", "; ", ", "):
        cut = text.find(mark, 20)
        if 0 < cut <= limit:
            return text[:cut].rstrip(",;") + "."
    return text[: limit - 1].rsplit(" ", 1)[0] + "…"


def _structured_list(prop: Any, definitions: Mapping[str, Any]) -> bool:
    """An optional list of objects (a schedule's pre-understood command, say): filled in by code, never
    by a person's words, so the model is not shown it."""
    if not isinstance(prop, Mapping):
        return False
    items = prop.get("items")
    if isinstance(items, Mapping) and "$ref" in items:
        items = definitions.get(str(items["$ref"]).rsplit("/", 1)[-1], {})
    return prop.get("type") == "array" and isinstance(items, Mapping) and items.get("type") == "object"


def tool_specs(catalog: Catalog, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """The tools named (all when None) in the OpenAI function-calling format, in catalog order, written
    compactly for the model. The same names always give the same specs, byte for byte."""
    wanted = None if names is None else set(names)
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": model_description(tool),
                "parameters": compact_schema(tool.input_schema()),
            },
        }
        for tool in catalog
        if wanted is None or tool.name in wanted
    ]


# -- what each tool is about ------------------------------------------------------------------------------


def tool_sentences(
    catalog: Catalog, templates: Mapping[str, Any], *, per_template: int = SENTENCES_PER_TEMPLATE
) -> dict[str, list[str]]:
    """Per tool, the sentences that say what it does: its model-facing description, its template
    examples, then sentences rendered from its template lines (a fixed seed: the same every run)."""
    examples = examples_of(dict(templates))
    intents = Intents.from_dict(with_live_list_placeholders(dict(templates)))
    found: dict[str, list[str]] = {}
    for tool in catalog:
        sentences = [model_description(tool), *examples.get(tool.name, [])]
        intent = intents.intents.get(tool.name)
        rng = random.Random(tool.name)
        for data in intent.data if intent is not None else ():
            for sentence in data.sentences:
                for _ in range(per_template):
                    text = " ".join(_render(sentence.expression, data, intents, rng).split())
                    if text and text not in sentences:
                        sentences.append(text)
        found[tool.name] = sentences[:MAX_SENTENCES]
    return found


def _render(expression: Expression, data: IntentData, intents: Intents, rng: random.Random) -> str:
    """One sentence a template expression can say: a random alternative at each choice, slots filled
    with one of their values (or a word standing for a name or free text)."""
    if isinstance(expression, TextChunk):
        return expression.text
    if isinstance(expression, RuleReference):
        rule = data.expansion_rules.get(expression.rule_name) or intents.expansion_rules.get(
            expression.rule_name
        )
        return "" if rule is None else _render(rule.expression, data, intents, rng)
    if isinstance(expression, ListReference):
        return _render_list(expression, data, intents, rng)
    if isinstance(expression, Alternative):
        if expression.is_optional and rng.random() < 0.5:
            return ""
        items = [i for i in expression.items if not (isinstance(i, TextChunk) and not i.text.strip())]
        return _render(rng.choice(items), data, intents, rng) if items else ""
    if isinstance(expression, Permutation):
        return " ".join(_render(item, data, intents, rng) for item in expression.items)
    if isinstance(expression, Group):
        return "".join(_render(item, data, intents, rng) for item in expression.items)
    return ""


def _render_list(reference: ListReference, data: IntentData, intents: Intents, rng: random.Random) -> str:
    slot_list = data.slot_lists.get(reference.list_name) or intents.slot_lists.get(reference.list_name)
    if isinstance(slot_list, TextSlotList) and slot_list.values:
        return _render(rng.choice(slot_list.values).text_in, data, intents, rng)
    if isinstance(slot_list, RangeSlotList):
        return str(slot_list.start)
    if isinstance(slot_list, WildcardSlotList):
        return "something"
    return reference.list_name.split("_")[0]  # a live name: the word for what it names ("bot")


# -- choosing ---------------------------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    """Content words, lower case, a plural "s" taken off so "bots" meets "bot"."""
    words = []
    for word in normalize(text).words:
        if word in _STOP or not word.isalpha():
            continue
        words.append(word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word)
    return words


def _said(words: Iterable[str]) -> set[str]:
    """An utterance's words, each also as the catalog words it may stand for (``_SAID_AS``)."""
    found = set(words)
    for word in list(found):
        found.update(_SAID_AS.get(word, ()))
    return found


@dataclass(frozen=True)
class ToolIndex:
    """The catalog's tools as the mean vector of their sentences, and keywords weighted by rarity;
    ``choose`` picks the tools an utterance could mean. Build it once per catalog (``build``)."""

    names: tuple[str, ...]
    """Tool names in catalog order."""
    sentences: Mapping[str, Sequence[str]]
    vectors: Mapping[str, Sequence[float]]
    """Per tool, the unit mean vector of its sentences; empty when no embedder could be used."""
    keywords: Mapping[str, Mapping[str, float]]
    """Per tool, its keywords and what each is worth (rarer among agents and tools: more)."""

    @classmethod
    async def build(
        cls, catalog: Catalog, templates: Mapping[str, Any], embedder: Embedder | None
    ) -> ToolIndex:
        """The index of ``catalog``'s tools; ``embedder`` None: keywords alone decide."""
        sentences = tool_sentences(catalog, templates)
        keywords = _keywords(catalog, templates)
        vectors: dict[str, list[float]] = {}
        if embedder is not None:
            flat = [(name, text) for name, texts in sentences.items() for text in texts]
            embedded = await embedder.embed([text for _, text in flat])
            sums: dict[str, list[float]] = {}
            for (name, _), vector in zip(flat, embedded, strict=True):
                total = sums.setdefault(name, [0.0] * len(vector))
                for i, x in enumerate(vector):
                    total[i] += x
            vectors = {name: _unit(total) for name, total in sums.items()}
        return cls(tuple(catalog.names()), sentences, vectors, keywords)

    @property
    def embedded(self) -> bool:
        """Whether the index has vectors (else ``choose`` goes by keywords alone)."""
        return bool(self.vectors)

    def scores(self, text: str, vectors: Sequence[Sequence[float]] = ()) -> dict[str, float]:
        """Each tool's score for an utterance; ``vectors``: those of its ``query_views`` from the same
        embedder as the index (none: keywords alone)."""
        found = _said(_words(text))
        scores: dict[str, float] = {}
        for name in self.names:
            similarity = 0.0
            if vectors and name in self.vectors:
                similarity = max(_dot(vector, self.vectors[name]) for vector in vectors)
            bonus = sum(weight for word, weight in self.keywords.get(name, {}).items() if word in found)
            scores[name] = similarity + KEYWORD_WEIGHT * bonus
        return scores

    def choose(
        self, text: str, vectors: Sequence[Sequence[float]] = (), *, limit: int = MAX_TOOLS
    ) -> list[str]:
        """The ``limit`` tools most likely meant, in catalog order (so equal choices give equal prompts).

        Without vectors and without a keyword hit nothing is chosen: the model then answers as chat."""
        scores = self.scores(text, vectors)
        ranked = sorted((name for name in self.names if scores[name] > 0), key=lambda n: -scores[n])
        chosen = set(ranked[:limit])
        return [name for name in self.names if name in chosen]

    def ranked(self, text: str, vectors: Sequence[Sequence[float]] = ()) -> list[str]:
        """Every tool, best first (for measuring where the right one stands)."""
        scores = self.scores(text, vectors)
        return sorted(self.names, key=lambda n: -scores[n])


def query_views(text: str) -> list[str]:
    """The texts an utterance is embedded as: itself, and its first ``VIEW_WORDS`` words when longer."""
    words = normalize(text).words
    return [text.strip()[:500]] + [" ".join(words[:n]) for n in VIEW_WORDS if len(words) > n]


async def choose_tools(index: ToolIndex, text: str, embedder: Embedder | None) -> list[str]:
    """The tools to offer for ``text``: by meaning and keywords; by keywords alone without an embedder
    or when the index has no vectors."""
    vectors: list[list[float]] = []
    if embedder is not None and index.embedded:
        vectors = await embedder.embed(query_views(text))
    return index.choose(text, vectors)


def _unit(vector: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


def _vocabulary(
    expression: Expression, data: IntentData, intents: Intents, into: list[str], rules: set[str]
) -> None:
    """Every word a template expression can say, into ``into`` (each rule walked once)."""
    if isinstance(expression, TextChunk):
        into.append(expression.text)
    elif isinstance(expression, RuleReference):
        if expression.rule_name in rules:
            return
        rules.add(expression.rule_name)
        rule = data.expansion_rules.get(expression.rule_name) or intents.expansion_rules.get(
            expression.rule_name
        )
        if rule is not None:
            _vocabulary(rule.expression, data, intents, into, rules)
    elif isinstance(expression, ListReference):
        slot_list = data.slot_lists.get(expression.list_name) or intents.slot_lists.get(expression.list_name)
        if isinstance(slot_list, TextSlotList):
            for value in slot_list.values:
                _vocabulary(value.text_in, data, intents, into, rules)
    elif isinstance(expression, Group):
        for item in expression.items:
            _vocabulary(item, data, intents, into, rules)


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=False))


def _keywords(catalog: Catalog, templates: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Per tool, the words of its name, description, examples and every word its templates can say, each
    worth 1 / (tools using it); words more than a few tools use are no keyword."""
    examples = examples_of(dict(templates))
    intents = Intents.from_dict(with_live_list_placeholders(dict(templates)))
    words: dict[str, set[str]] = {}
    for tool in catalog:
        text = [tool.name.replace("_", " "), model_description(tool), *examples.get(tool.name, [])]
        intent = intents.intents.get(tool.name)
        for data in intent.data if intent is not None else ():
            for sentence in data.sentences:
                _vocabulary(sentence.expression, data, intents, text, set())
        words[tool.name] = set(_words(" ".join(text)))
    agent = {tool.name: tool.agent for tool in catalog}
    tools_using = Counter(word for found in words.values() for word in found)
    agents_using = Counter(
        word
        for a in set(agent.values())
        for word in set().union(*(found for name, found in words.items() if agent[name] == a))
    )
    return {
        name: {
            word: 1.0 / agents_using[word] / math.sqrt(tools_using[word])
            for word in found
            if agents_using[word] <= MAX_KEYWORD_AGENTS
        }
        for name, found in words.items()
    }
