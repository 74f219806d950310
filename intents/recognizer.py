"""The recognizer: utterance -> ordered tool calls, by sentence templates (hassil) and typed slots."""

from __future__ import annotations

import itertools
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from hassil import Intents, RecognizeResult, SlotList, TextSlotList, recognize_all
from hassil.expression import ListReference, Sentence
from pydantic import ValidationError
from pydantic_core import to_jsonable_python

from intents.chatter import Chat, Chatter
from intents.models import ConversationContext, IntentMatch, LiveLists, Mention
from intents.nearest import (
    FUNCTION_WEIGHT,
    FUNCTION_WORDS,
    MAX_TRAILING_WORDS,
    TRAILING_WORD,
    CommandGraph,
    Nearest,
    sound_distance,
)
from intents.normalize import Utterance, normalize
from intents.slots import Built, SlotInput, build_arguments, slot_problem
from intents.templates import (
    LIVE_LISTS,
    TOO_LONG,
    examples_of,
    load_templates,
    too_long_of,
    with_live_list_placeholders,
)
from tools import LIVE_KINDS, EntityKind, ToolDefinition
from tools.builtin.approvals import POSITIONS
from tools.catalog import Catalog
from tools.errors import InvalidArgumentsError

__all__ = ["Recognizer"]

MIN_CONFIDENCE = 0.75
"""Matches below this are not returned."""
MIN_COVERAGE = 0.6
"""A corrected guess must explain at least this much of what was heard, and have this much of its own
words heard (``Nearest.coverage`` and ``Nearest.recall``, function words counting a quarter); below, the
"not a command" hypothesis wins. Calibrated on tests/intents/data/heard.yaml: the misheard commands there
score 0.63 and up; of the negatives, without the chatter sentences, only three pass this and
``WORDS_PER_CHANGE`` ("great job" as "cron job", "what's your name" as "what is our name")."""
WORDS_PER_CHANGE = 5
"""A corrected guess may change (mishear or add) one of its own words per this many heard words, at least
one: a guess that needs two changes in a short utterance is another sentence, not a misheard one."""
SAID_PLACE = 0.25
"""The same for an approval named by its place ("the last one"): short words, so a closer sound ("lost"
is "last"; "fist" is no "last")."""
MIN_CONTENT_WORDS = 2
"""Content words (not ``FUNCTION_WORDS``) a corrected guess that changes heard words must have."""
PADDING = frozenset({"thank", "thanks", "very", "much", "bye", "okay", "ok", "so", "watching", "yeah"})
"""Words recognisers pad the end of speech with, besides function words (``_padding``)."""
SAID_NAME = 0.35
"""A corrected match may name a bot, schedule or reminder only if the heard words sound at least this close
to the name (distance per word of it): a name nobody said is never offered."""

_CONJUNCTIONS = (("and", "then"), ("and", "also"), ("and", "after", "that"), ("then",), ("and",), ("also",))
_MAX_SPLITS = 5
_MAX_RESULTS_PER_PIECE = 48
_CACHE_SIZE = 2048
_TRAILING_OK = re.compile(r"^(now|right now|immediately|asap|quickly|again|thanks|thank you|for me|already)$")
_STOP_TEXT = (
    "a an the my our me us i you to of for in on at is are be it that this what which do does show "
    "please can could would will with and or from about"
)
_STOPWORDS = frozenset(_STOP_TEXT.split())


@dataclass(frozen=True)
class _Piece:
    start: int
    end: int


class Recognizer:
    """Recognise commands in utterances with the sentence templates of a catalog's tools.

    Build it once; ``recognize`` is pure and fast (templates are compiled in ``__init__``).
    """

    def __init__(
        self,
        catalog: Catalog,
        *,
        timezone: str = "UTC",
        templates: dict[str, Any] | None = None,
        chatter: dict[str, Any] | None = None,
    ):
        """``templates``: the sentence templates (default: the built-in tools'); ``chatter``: the sentences
        that are no command (default: ``intents/chatter.yaml``)."""
        self._catalog = catalog
        self._chatter = Chatter(chatter)
        self._tz = ZoneInfo(timezone)
        self._open = {tool.name: _required_free_text(tool) for tool in catalog}
        # a schedule's target is a command, but not one that makes another schedule
        self._not_targets = frozenset(tool.name for tool in catalog.creating(EntityKind.SCHEDULE))
        data = templates if templates is not None else load_templates()
        self._examples = examples_of(data)
        self._too_long = too_long_of(data)
        data = with_live_list_placeholders(data)
        self._intents = Intents.from_dict(data)
        self._check(self._intents)
        self._misses: OrderedDict[tuple[Any, ...], None] = OrderedDict()
        self._keywords = self._tool_keywords()
        self._command_graph: CommandGraph | None = None

    # ------------------------------------------------------------------ public

    def recognize(
        self,
        text: str,
        *,
        lists: LiveLists | None = None,
        context: ConversationContext | None = None,
        now: datetime | None = None,
    ) -> list[IntentMatch]:
        """The commands in ``text``, in the order said; ``[]`` when nothing confidently matches, or when the
        whole utterance is chatter (a greeting, thanks, small talk: see ``chat``).

        ``lists`` are the names known now (bots, schedules, reminders); ``context`` resolves "it" and
        "that one"; ``now`` anchors relative times (default: the current time in the timezone).
        Never raises on any input.
        """
        if not isinstance(text, str):
            return []
        utterance = normalize(text)
        if not utterance.words or self._chatter.classify(utterance) is not None:
            return []
        lists = lists or LiveLists()
        context = context or ConversationContext()
        key = (utterance.words, lists.key(), context.key())
        if key in self._misses:
            self._misses.move_to_end(key)
            return []
        moment = self._now(now)
        matches = _Search(self, utterance, lists, context, moment).run()
        if not matches:
            self._misses[key] = None
            if len(self._misses) > _CACHE_SIZE:
                self._misses.popitem(last=False)
        return matches

    def recognize_heard(
        self,
        text: str,
        *,
        lists: LiveLists | None = None,
        context: ConversationContext | None = None,
        now: datetime | None = None,
    ) -> list[IntentMatch]:
        """``recognize`` for a transcript of speech: when the words as heard are no command, or name a bot,
        schedule or reminder that does not exist, what was probably said is tried instead: the words
        without the last few (recognisers pad the end of speech: "… the backup bot. Thank you very
        much."), then the nearest sentences the templates can say (``intents.nearest``). Matches found
        that way have ``source="corrected"``, their ``text`` is the corrected wording, and their
        confidence is lowered by how far the correction went, so the caller can read them back first.

        A guess competes with "this was no command" (chatter is never corrected): it must explain most of
        what was heard and have most of its own words heard (``MIN_COVERAGE``), change few of them
        (``WORDS_PER_CHANGE``) and rest on content words (``MIN_CONTENT_WORDS``), drop only a tail that
        may be padding (``_padding``), and name only a bot, schedule or reminder that sounds like heard
        words (``SAID_NAME``), or an approval by an id heard as said or a place heard nearly as said
        (``SAID_PLACE``); "approve it" is never a correction.
        """
        lists = lists or LiveLists()
        matches = self.recognize(text, lists=lists, context=context, now=now)
        if (matches and not _unknown_names(matches, lists)) or not isinstance(text, str):
            return matches
        utterance = normalize(text)
        heard = utterance.words
        if not heard or self._chatter.classify(utterance) is not None:
            return []
        # at most a third of what was heard is padding
        most = min(MAX_TRAILING_WORDS, len(heard) // 3)
        trimmed = [
            Nearest(
                "",
                " ".join(heard[:-dropped]),
                TRAILING_WORD * dropped,
                _kept(heard, dropped),
                dropped=dropped,
            )
            for dropped in range(1, most + 1)
        ]
        names = {list_name: lists.names(kind) for list_name, kind in LIVE_LISTS.items()}
        nearest = self._graph().nearest(heard, names=names, avoid=" ".join(heard))
        guesses = sorted(
            (g for g in itertools.chain(trimmed, nearest) if _explains(g, utterance)), key=lambda g: g.cost
        )
        # names known first; then a reminder named word for word as heard, which the tool may not know
        for lenient in (False, True):
            for guess in guesses:
                found = self.recognize(guess.text, lists=lists, context=context, now=now)
                tools = [m.tool for m in found]
                named = [m for m in found if not (lenient and _words_heard(m.mention, heard))]
                if not found or _unknown_names(named, lists) or (guess.intent and tools != [guess.intent]):
                    continue
                if not all(_said(m.mention, heard) for m in found):
                    continue
                if matches and tools != [m.tool for m in matches]:
                    continue  # the command was heard; only the name is in doubt
                closeness = max(0.0, 1.0 - guess.cost / len(heard))
                return [
                    replace(m, source="corrected", confidence=m.confidence * closeness, text=guess.text)
                    for m in found
                ]
        return matches  # a name nobody has may still be meant: the tool will say so

    def chat(self, text: str) -> Chat | None:
        """What kind of chatter ``text`` is ("greeting", "thanks", ...) with a short reply; None when it
        is no chatter (a command, or a request nothing here understands)."""
        return self._chatter.classify(normalize(text)) if isinstance(text, str) else None

    def clear_cache(self) -> None:
        """Forget the remembered misses (for benchmarks, or after the templates' lists changed)."""
        self._misses.clear()

    def suggest(self, text: str, limit: int = 3) -> list[str]:
        """Example sentences of the commands closest to ``text``, for "I didn't understand; try: …"."""
        if limit <= 0:
            return []
        words = set(normalize(text).words) - _STOPWORDS if isinstance(text, str) else set()
        ranked = sorted(
            self._keywords,
            key=lambda name: (-len(words & self._keywords[name]), self._order(name)),
        )
        suggestions: list[str] = []
        for name in ranked:
            examples = self._examples.get(name) or []
            if examples and examples[0] not in suggestions:
                suggestions.append(examples[0])
            if len(suggestions) >= limit:
                break
        return suggestions

    # ------------------------------------------------------------------ internals

    def _graph(self) -> CommandGraph:
        """The templates as a word graph for ``recognize_heard`` (built on first use: typed text never
        needs it)."""
        if self._command_graph is None:
            self._command_graph = CommandGraph(self._intents, live_lists=LIVE_LISTS)
        return self._command_graph

    def _now(self, now: datetime | None) -> datetime:
        if now is None:
            return datetime.now(self._tz)
        if now.tzinfo is None:
            return now.replace(tzinfo=self._tz)
        return now.astimezone(self._tz)

    def _order(self, name: str) -> int:
        names = self._catalog.names()
        return names.index(name) if name in names else len(names)

    def _check(self, intents: Intents) -> None:
        """Every intent is a tool of the catalog and every slot has an argument builder."""
        for name, intent in intents.intents.items():
            if name not in self._catalog:
                raise ValueError(f"templates name intent {name!r}, which is not a tool in the catalog")
            tool = self._catalog.get(name)
            for data in intent.data:
                for sentence in data.sentences:
                    for slot in _slot_names(sentence, data.expansion_rules | intents.expansion_rules):
                        problem = slot_problem(tool, slot)
                        if problem is not None:
                            raise ValueError(f"intent {name!r} uses slot {slot!r}: {problem}")

    def _tool_keywords(self) -> dict[str, frozenset[str]]:
        keywords: dict[str, frozenset[str]] = {}
        for tool in self._catalog:
            words: set[str] = set(tool.name.split("_"))
            for example in self._examples.get(tool.name, []):
                words.update(normalize(example).words)
            words.update(w.rstrip("s") for w in list(words))
            keywords[tool.name] = frozenset(words - _STOPWORDS)
        return keywords

    def _slot_lists(self, lists: LiveLists) -> dict[str, SlotList]:
        return _live_slot_lists(lists.key())

    def _candidates(
        self, text: str, lists: LiveLists, exclude: frozenset[str] = frozenset()
    ) -> list[RecognizeResult]:
        results: list[RecognizeResult] = []
        seen: set[tuple[Any, ...]] = set()
        try:
            found = recognize_all(text, self._intents, slot_lists=self._slot_lists(lists))
            for result in itertools.islice(found, _MAX_RESULTS_PER_PIECE):
                if result.intent.name in exclude:
                    continue
                # Optional words produce the same slots many times over; build each reading once.
                key = (
                    result.intent.name,
                    result.text_chunks_matched,
                    tuple((e.name, str(e.value), e.text_span, e.is_wildcard) for e in result.entities_list),
                )
                if key not in seen:
                    seen.add(key)
                    results.append(result)
        except (ValueError, KeyError, IndexError, RecursionError):
            return []
        return results

    def _build(self, result: RecognizeResult, slots: SlotInput) -> Built | None:
        return build_arguments(result, self._catalog.get(result.intent.name), slots)

    def _validate(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any] | None:
        try:
            model = self._catalog.get(tool).validate_arguments(arguments)
        except InvalidArgumentsError:
            return None
        dumped: dict[str, Any] = model.model_dump(mode="json", exclude_none=True)
        return dumped

    def _over_long(self, tool: str, arguments: dict[str, Any]) -> str | None:
        """The reply when free text over its length limit is all that keeps these arguments from being
        valid ("remember that" and a page of text is still a command to remember: say it is too long);
        None for any other problem. The limit is the input model's own ``max_length``."""
        definition = self._catalog.get(tool)
        try:
            definition.input_model.model_validate(arguments)
        except ValidationError as err:
            errors = err.errors()
        else:
            return None
        if not errors or any(
            e["type"] != "string_too_long" or not e["loc"] or e["loc"][0] not in definition.free_text
            for e in errors
        ):
            return None
        argument = str(errors[0]["loc"][0])
        length = len(str(arguments[argument]).strip())
        limit = (errors[0].get("ctx") or {}).get("max_length")
        return self._too_long.get(tool, TOO_LONG).format(argument=argument, length=length, limit=limit)

    def _match(
        self, tool: str, arguments: dict[str, Any], confidence: float, text: str, problem: str | None = None
    ) -> IntentMatch:
        mention = Mention.of(self._catalog.get(tool), arguments)
        return IntentMatch(tool, arguments, round(confidence, 3), "template", text, mention, problem)


def _required_free_text(tool: ToolDefinition) -> frozenset[str]:
    """The free text a tool's call is about (a fact, a query, a reminder's text), not an optional remark
    beside it (a reason): a sentence of such a tool is mostly words it takes as they come."""
    fields = tool.input_model.model_fields
    return frozenset(name for name in tool.free_text if fields[name].is_required())


def _unknown_names(matches: Sequence[IntentMatch], lists: LiveLists) -> bool:
    """True when a match acts on a bot, schedule or reminder that is not in the live lists (a call that
    creates one names a new one, so that does not count)."""
    for match in matches:
        mention = match.mention
        if (
            mention is not None
            and mention.kind in LIVE_KINDS
            and not mention.creates
            and mention.name not in lists.names(mention.kind)
        ):
            return True
    return False


def _kept(heard: Sequence[str], dropped: int) -> float:
    """How much of what was heard is left without the last ``dropped`` words (weighed as in
    ``Nearest.coverage``)."""
    return round(sum(map(_weight, heard[:-dropped])) / sum(map(_weight, heard)), 3)


def _padding(utterance: Utterance, dropped: int) -> bool:
    """Whether the last ``dropped`` heard words may be padding: recognisers pad the end of speech after a
    finished sentence ("… the crawler. Thank you.") or with words that say nothing ("… minutes it's"), so
    "the schedule changed" is no "the schedule" and "how are things going at work" no status question."""
    if not dropped:
        return True
    heard = utterance.words
    tail = heard[len(heard) - dropped :]
    return len(heard) - dropped in utterance.breaks or all(w in FUNCTION_WORDS or w in PADDING for w in tail)


def _weight(word: str) -> float:
    return FUNCTION_WEIGHT if word in FUNCTION_WORDS else 1.0


def _explains(guess: Nearest, utterance: Utterance) -> bool:
    """Whether a guess explains what was heard better than "this was no command": it covers most of it,
    most of its own words were heard, it changes few of them, something besides function words was
    said, and a guess that changes words rests on at least two content words of its own ("remind me" is
    no misheard "reminder", nor "what is the news" a misheard "what is the state")."""
    heard = utterance.words
    content = sum(word not in FUNCTION_WORDS for word in guess.text.split())
    return (
        _padding(utterance, guess.dropped)
        and (guess.changed == 0 or content >= MIN_CONTENT_WORDS)
        and min(guess.coverage, guess.recall) >= MIN_COVERAGE
        and guess.changed <= max(1, len(heard) // WORDS_PER_CHANGE)
        and any(word not in FUNCTION_WORDS for word in heard)
    )


def _words_heard(mention: Mention | None, heard: Sequence[str]) -> bool:
    """Whether a thing named by its words (a reminder's text) was heard word for word: then only the
    command around it was misheard, and the tool says whether such a thing exists."""
    if mention is None or mention.kind.named_by != "words":
        return False
    words = normalize(mention.name).words
    return bool(words) and any(heard[i : i + len(words)] == words for i in range(len(heard)))


def _said(mention: Mention | None, heard: Sequence[str]) -> bool:
    """Whether the bot, schedule, reminder or approval a corrected match names was said: a live name must
    sound like heard words (``SAID_NAME``), an approval's id must have been heard as it is."""
    if mention is None or mention.creates:
        return True
    name = normalize(mention.name).words
    if not name:
        return False
    if mention.kind not in LIVE_KINDS:
        if any(ch.isdigit() for ch in mention.name):  # an approval's id: heard as it is
            return all(word in heard for word in name)
        if mention.name not in POSITIONS:
            return False
        # an approval by its place ("the last one", "the second one", heard as "2"): a word heard as it
        place = {mention.name, normalize("the " + mention.name).words[-1]}
        return any(sound_distance(p, w) <= SAID_PLACE for p in place for w in heard)
    joined = "".join(name)
    for start in range(len(heard)):
        for end in range(start + 1, min(len(heard), start + len(name) + 1) + 1):
            if sound_distance(joined, "".join(heard[start:end])) <= SAID_NAME:
                return True
    return False


@lru_cache(maxsize=256)
def _live_slot_lists(key: tuple[tuple[str, ...], ...]) -> dict[str, SlotList]:
    """Slot lists of the live names; ``key`` is ``LiveLists.key()``: names per kind of ``LIVE_KINDS``."""
    by_kind = dict(zip(LIVE_KINDS, key, strict=True))
    slot_lists: dict[str, SlotList] = {}
    for list_name, kind in LIVE_LISTS.items():
        values = []
        for name in by_kind[kind][:500]:
            if not isinstance(name, str):
                continue
            for variant in {name, re.sub(r"[-_.]+", " ", name)}:
                spoken = normalize(variant).text
                if spoken and (spoken, name) not in values:
                    values.append((spoken, name))
        slot_lists[list_name] = TextSlotList.from_tuples(values, allow_template=False, name=list_name)
    return slot_lists


def _slot_names(sentence: Sentence, rules: dict[str, Sentence]) -> set[str]:
    return _slots_in(sentence.expression, rules, 0)


def _slots_in(expression: Any, rules: dict[str, Sentence], depth: int) -> set[str]:
    names: set[str] = set()
    if isinstance(expression, ListReference):
        names.add(expression.slot_name)
    for item in getattr(expression, "items", ()) or ():
        names |= _slots_in(item, rules, depth)
    rule_name = getattr(expression, "rule_name", None)
    if rule_name and rule_name in rules and depth < 10:
        names |= _slots_in(rules[rule_name].expression, rules, depth + 1)
    return names


class _Search:
    """One recognition: find the best split of the utterance into commands."""

    def __init__(
        self,
        recognizer: Recognizer,
        utterance: Utterance,
        lists: LiveLists,
        context: ConversationContext,
        now: datetime,
    ) -> None:
        self.r = recognizer
        self.utterance = utterance
        self.lists = lists
        self.context = context
        self.now = now
        self._pieces: dict[tuple[int, int], list[RecognizeResult]] = {}
        self._commands: dict[tuple[str, ...], bool] = {}

    def run(self) -> list[IntentMatch]:
        n = len(self.utterance)
        whole = self._resolve([_Piece(0, n)])
        cuts = self._cuts()
        if whole is not None and not (whole[1] and cuts):
            return whole[0]
        best: list[IntentMatch] | None = None
        for count in range(1, min(len(cuts), _MAX_SPLITS) + 1):
            options = []
            for chosen in itertools.combinations(cuts, count):
                pieces = self._pieces_for(chosen)
                if pieces is None:
                    continue
                resolved = self._resolve(pieces)
                if resolved is not None:
                    options.append(resolved[0])
            if options:
                best = max(options, key=lambda matches: sum(m.confidence for m in matches))
                break
        if whole is not None and (best is None or all(not self._closed(m) for m in best[1:])):
            return whole[0]
        if best is not None:
            return best
        return self._fuzzy()

    # A "closed" match has no free text at its heart: it cannot have swallowed another command.
    def _closed(self, match: IntentMatch) -> bool:
        return not (self.r._open.get(match.tool, frozenset()) & match.arguments.keys())

    def _cuts(self) -> list[tuple[int, int]]:
        """Places to split: (end of the left piece, start of the right piece)."""
        words = self.utterance.words
        cuts: list[tuple[int, int]] = []
        index = 1
        while index < len(words) - 1 and len(cuts) < _MAX_SPLITS + 1:
            if index in self.utterance.breaks:
                skip = index
                for conjunction in _CONJUNCTIONS:
                    if tuple(words[index : index + len(conjunction)]) == conjunction:
                        skip = index + len(conjunction)
                        break
                cuts.append((index, skip))
                index = max(skip, index + 1)
                continue
            for conjunction in _CONJUNCTIONS:
                if tuple(words[index : index + len(conjunction)]) == conjunction:
                    cuts.append((index, index + len(conjunction)))
                    index += len(conjunction)
                    break
            else:
                index += 1
        return cuts[:_MAX_SPLITS]

    def _pieces_for(self, chosen: Sequence[tuple[int, int]]) -> list[_Piece] | None:
        pieces: list[_Piece] = []
        start = 0
        for end, resume in chosen:
            if end <= start:
                return None
            pieces.append(_Piece(start, end))
            start = resume
        if start >= len(self.utterance):
            return None
        pieces.append(_Piece(start, len(self.utterance)))
        return pieces

    def _resolve(self, pieces: Sequence[_Piece]) -> tuple[list[IntentMatch], bool] | None:
        """Build every piece in order (earlier pieces feed "it" in later ones); None if any fails."""
        context = self.context.copy()
        matches: list[IntentMatch] = []
        free_text = False
        for piece in pieces:
            built = self._best(piece, context)
            if built is None:
                return None
            match, used_free_text = built
            free_text = free_text or used_free_text
            context.observe(match)
            matches.append(match)
        return matches, free_text

    def _best(self, piece: _Piece, context: ConversationContext) -> tuple[IntentMatch, bool] | None:
        utterance = self.utterance.slice(piece.start, piece.end)
        best: tuple[tuple[float, ...], IntentMatch, bool] | None = None
        for result in self._recognize(piece, utterance):
            slots = SlotInput(utterance, context, self.now, self._is_command)
            built = self.r._build(result, slots)
            if built is None:
                continue
            problem = None
            arguments = self.r._validate(result.intent.name, built.arguments)
            if arguments is None:
                problem = self.r._over_long(result.intent.name, built.arguments)
                if problem is None:
                    continue
                arguments = to_jsonable_python(built.arguments)
            confidence = built.confidence
            if built.references and context.topic not in built.references:
                confidence -= 0.05
            if confidence < MIN_CONFIDENCE:
                continue
            # a reading that can run beats one that is too long
            score = (
                problem is None,
                confidence,
                built.free_text == 0,
                result.text_chunks_matched,
                -_wildcard_chars(result),
            )
            if best is None or score > best[0]:
                text = utterance.original_text(0, len(utterance))
                match = self.r._match(result.intent.name, arguments, confidence, text, problem)
                best = (score, match, built.free_text > 0)
        return (best[1], best[2]) if best else None

    def _recognize(self, piece: _Piece, utterance: Utterance) -> list[RecognizeResult]:
        key = (piece.start, piece.end)
        if key not in self._pieces:
            self._pieces[key] = self.r._candidates(utterance.text, self.lists)
        return self._pieces[key]

    def _is_command(self, words: Sequence[str]) -> bool:
        """Whether ``words`` alone are a command that may be a schedule's target."""
        if not words:
            return False
        key = tuple(words)
        if key not in self._commands:
            self._commands[key] = self._find_command(words)
        return self._commands[key]

    def _find_command(self, words: Sequence[str]) -> bool:
        sub = normalize(" ".join(words))
        context = self.context
        for result in self.r._candidates(sub.text, self.lists, exclude=self.r._not_targets):
            built: Built | None = self.r._build(result, SlotInput(sub, context, self.now, lambda _: False))
            if built is not None and self.r._validate(result.intent.name, built.arguments) is not None:
                return True
        return False

    def _fuzzy(self) -> list[IntentMatch]:
        """Last resort: ignore one or two harmless trailing words ("now", "again") of a closed command."""
        words = self.utterance.words
        for drop in (1, 2):
            if len(words) <= drop or not _TRAILING_OK.match(" ".join(words[-drop:])):
                continue
            built = self._best(_Piece(0, len(words) - drop), self.context.copy())
            if built is not None and not built[1]:
                match = built[0]
                confidence = round(match.confidence * 0.9, 3)
                if confidence >= MIN_CONFIDENCE:
                    return [replace(match, confidence=confidence)]
        return []


def _wildcard_chars(result: RecognizeResult) -> int:
    return sum(len(entity.text or "") for entity in result.entities_list if entity.is_wildcard)
