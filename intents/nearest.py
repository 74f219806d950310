"""The nearest command: what the sentence templates can say that sounds most like a misheard utterance.

Speech recognisers mishear short commands in ways a person would shrug off ("list the mod", "show ending
approvals", "stop the crawler, maat"). The templates are a grammar of everything Kommandant understands,
so the closest sentence that grammar can produce is a strong guess at what was said. ``CommandGraph``
turns the templates into one word graph (alternatives, optionals, rules and permutations expanded; slot
lists kept as slots) and ``nearest`` searches it for the cheapest alignment with the heard words:

- a template word heard as another word costs their sound-alike distance (0 when equal, at most 1),
- a heard word the sentence has no place for, or a template word that was not heard, costs 1,
- a live name (bot, schedule, reminder) costs the distance of the heard words to the closest name,
- a number slot takes a heard number for free; a free-text slot takes heard words at a small cost each.

The result is text for the ordinary recognizer, which still decides whether it is a command: this module
only proposes. Pure: the caller passes the templates and the live names in.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

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
from hassil.expression import (
    Sequence as HassilSequence,
)
from hassil.intents import IntentData, RangeSlotList, SlotList, TextSlotList, WildcardSlotList

from intents.normalize import normalize

__all__ = ["CommandGraph", "Nearest", "sound_distance"]

MISS = 1.0
"""Cost of a heard word with no place in the sentence, or of a template word that was not heard."""
LEADING_WORD = 0.5
TRAILING_WORD = 0.3
"""Costs of a heard word before or after a whole sentence: recognisers pad the edges of speech with words
never said ("And list …", "… the mailer bot. Thank you very much."), so those are cheaper to drop than a
word in the middle; Whisper's padding comes mostly at the end."""
MAX_LEADING_WORDS = 1
MAX_TRAILING_WORDS = 5
SAME_SOUND = 0.2
"""Least cost of two different spellings that sound alike ("bot"/"but"): hearing one for the other is
likely, but not certain."""
FREE_TEXT_WORD = 0.2
"""Cost per heard word taken by a free-text slot (a reminder's text, a search query)."""
MAX_FREE_TEXT_WORDS = 12
MAX_COST_PER_WORD = 0.34
"""A guess costing more than this per heard word is no guess: nothing is proposed."""
MIN_ANCHOR_WORDS = 2
"""Heard words outside free-text slots a guess needs, unless it heard them exactly: "note" + any chatter
is no command, but "every" + a time and a command is."""
GUESSES_PER_INTENT = 3
MAX_NAME_DISTANCE = 0.5
"""A live name is a guess only if it sounds at least this much like the heard words (per word of it)."""
MAX_PERMUTATION_ITEMS = 4
ARTICLES = frozenset({"a", "the", "that", "this"})
"""Words recognisers swap for one another freely ("is a crawler running", "what does that wiki say"): one
heard for another is no change of the sentence, and one heard where the sentence has none costs only
``EXTRA_ARTICLE``."""
EXTRA_ARTICLE = 0.3
PREPOSITIONS = frozenset({"of", "on", "in", "at", "for", "to", "from", "about", "with", "by"})
"""Short function words recognisers swap for one another too; one heard for another is no change of the
sentence (it still costs its sound distance)."""
SPLIT_WORD = 0.3
SPLIT_SOUND = 0.3
"""A template word heard as two words ("cancel" as "can solve", "backup" as "back up") costs ``SPLIT_WORD``
plus the distance of the two joined, and is tried only when they sound at most ``SPLIT_SOUND`` from it."""
CLOSE_SOUND = 0.6
"""A heard word further than this from its template word is not heard as it: it explains nothing."""
FREE_TEXT_COVERAGE = 0.5
"""What a word taken by a free-text slot explains: any word fits there, so it is only half a reason."""
FUNCTION_WEIGHT = 0.25
"""How much a function word ("the", "what", "is") counts in coverage beside a content word: "what is the
weather" shares three words with "what is the status", and none of them says what was asked."""
_FUNCTION_TEXT = (
    "a an the my our your me us i you we he she they it its to of for in on at is are am was were be been "
    "do does did what which who whom how why when where that this these those there here have has had can "
    "could would will should shall may might with and or but from about so any all some no not just then "
    "up out as by"
)
FUNCTION_WORDS = frozenset(_FUNCTION_TEXT.split())

_EPS, _WORD, _LIVE, _NUMBER, _FREE = range(5)
_TAIL_STATES = MAX_TRAILING_WORDS + 1


@dataclass(frozen=True, slots=True)
class Nearest:
    """A sentence the templates can say, the intent it belongs to, and how far it is from what was heard."""

    intent: str
    text: str
    cost: float
    coverage: float = 1.0
    """How much of what was heard the sentence explains, 0..1: each heard word counts as much as it sounds
    like the template word (or live name) it is aligned with; a word in a free-text slot counts
    ``FREE_TEXT_COVERAGE``; a word dropped, inserted or heard far from any template word counts nothing."""
    recall: float = 1.0
    """How much of the sentence's own words was heard, 0..1, by the same measure (free text left out)."""
    changed: int = 0
    """How many of the sentence's own words were not heard as they are (misheard or not heard at all)."""
    dropped: int = 0
    """How many heard words after the sentence it leaves out (recognisers pad the end of speech)."""


@dataclass(frozen=True, slots=True)
class _Arc:
    to: int
    kind: int
    label: str = ""


class CommandGraph:
    """Every template sentence as paths through one graph of words and slots; built once, searched often."""

    def __init__(self, intents: Intents, *, live_lists: Iterable[str] = ()) -> None:
        """``live_lists``: names of the slot lists filled at match time (their values come to ``nearest``)."""
        self._intents = intents
        self._live = frozenset(live_lists)
        self._arcs: list[list[_Arc]] = []
        self._final: dict[int, str] = {}
        self.start = self._node()
        for name, intent in intents.intents.items():
            for data in intent.data:
                for sentence in data.sentences:
                    end = self._build(sentence.expression, self.start, data)
                    if end is not None:
                        final = self._node()
                        self._add(end, final)
                        self._final[final] = name

    # -- building -------------------------------------------------------------------------------------
    def _node(self) -> int:
        self._arcs.append([])
        return len(self._arcs) - 1

    def _add(self, start: int, end: int, kind: int = _EPS, label: str = "") -> None:
        self._arcs[start].append(_Arc(end, kind, label))

    def _build(self, expression: Expression, state: int, data: IntentData) -> int | None:
        """Add ``expression`` after ``state``; the node it ends in, or None for a dead branch."""
        if isinstance(expression, TextChunk):
            for word in normalize(expression.text).words:
                following = self._node()
                self._add(state, following, _WORD, word)
                state = following
            return state
        if isinstance(expression, ListReference):
            return self._build_list(expression, state, data)
        if isinstance(expression, RuleReference):
            rule = data.expansion_rules.get(expression.rule_name) or self._intents.expansion_rules.get(
                expression.rule_name
            )
            return None if rule is None else self._build(rule.expression, state, data)
        if isinstance(expression, Permutation):
            if len(expression.items) > MAX_PERMUTATION_ITEMS:
                return None
            orders = [HassilSequence(items=list(p)) for p in itertools.permutations(expression.items)]
            return self._build(Alternative(items=list(orders)), state, data)
        if isinstance(expression, Alternative):
            end = self._node()
            for item in expression.items:
                branch = self._build(item, state, data)
                if branch is not None:
                    self._add(branch, end)
            if expression.is_optional:
                self._add(state, end)
            return end
        if isinstance(expression, Group):
            current: int | None = state
            for item in expression.items:
                current = self._build(item, current, data) if current is not None else None
            return current
        return state

    def _build_list(self, reference: ListReference, state: int, data: IntentData) -> int | None:
        slot_list: SlotList | None = data.slot_lists.get(reference.list_name) or self._intents.slot_lists.get(
            reference.list_name
        )
        end = self._node()
        if reference.list_name in self._live:
            self._add(state, end, _LIVE, reference.list_name)
        elif isinstance(slot_list, RangeSlotList):
            self._add(state, end, _NUMBER)
        elif isinstance(slot_list, WildcardSlotList):
            self._add(state, end, _FREE)
        elif isinstance(slot_list, TextSlotList):
            reachable = False
            for value in slot_list.values:
                branch = self._build(value.text_in, state, data)
                if branch is not None:
                    self._add(branch, end)
                    reachable = True
            if not reachable:
                return None
        else:
            return None
        return end

    # -- searching ------------------------------------------------------------------------------------
    def nearest(
        self,
        heard: Sequence[str],
        *,
        names: Mapping[str, Sequence[str]] | None = None,
        limit: int = 8,
        max_cost_per_word: float = MAX_COST_PER_WORD,
        avoid: str | None = None,
    ) -> list[Nearest]:
        """Up to ``limit`` sentences closest to the ``heard`` words (normalised), cheapest first, at most
        ``GUESSES_PER_INTENT`` per intent; none when even the closest is too far (``max_cost_per_word``).

        ``names``: live list name -> the names it holds now (e.g. ``{"bot": ["backup", "crawler"]}``);
        ``avoid``: a sentence not to propose (the words as heard, when they are known to be no command).
        """
        words = tuple(heard)
        if not words:
            return []
        live = {key: [tuple(normalize(n).words) for n in values] for key, values in (names or {}).items()}
        return _Search(self, words, live, max_cost_per_word, avoid).run(limit)


class _Search:
    """Dijkstra over (graph node, words consumed): the cheapest alignments, cheapest first."""

    def __init__(
        self,
        graph: CommandGraph,
        words: tuple[str, ...],
        live: dict[str, list[tuple[str, ...]]],
        per_word: float,
        avoid: str | None = None,
    ) -> None:
        self.graph, self.words, self.live, self.per_word, self.avoid = graph, words, live, per_word, avoid
        self.budget = per_word * len(words)
        self.best: dict[tuple[int, int], float] = {}
        self.came_from: dict[tuple[int, int], tuple[tuple[int, int], tuple[str, ...], str]] = {}
        """state -> (the state before it, the words it adds to the sentence, its kind: "free", "tail",
        "split" or "")"""
        self.queue: list[tuple[float, int, int, int]] = []
        self.counter = itertools.count()

    def push(
        self,
        cost: float,
        state: tuple[int, int],
        previous: tuple[int, int] | None,
        said: tuple[str, ...],
        *,
        kind: str = "",
    ) -> None:
        if cost > self.budget + 1e-9 or cost >= self.best.get(state, float("inf")) - 1e-12:
            return
        self.best[state] = cost
        if previous is not None:
            self.came_from[state] = (previous, said, kind)
        heapq.heappush(self.queue, (cost, next(self.counter), state[0], state[1]))

    def run(self, limit: int) -> list[Nearest]:
        found: list[Nearest] = []
        words, total = self.words, len(self.words)
        for skipped in range(min(MAX_LEADING_WORDS, total) + 1):  # heard before the sentence began
            self.push(LEADING_WORD * skipped, (self.graph.start, skipped), None, ())
        while self.queue and len(found) < limit:
            cost, _, node, at = heapq.heappop(self.queue)
            state = (node, at)
            if cost > self.best.get(state, float("inf")) + 1e-12:
                continue
            if node < 0:  # a whole sentence, with the words heard after it dropped
                self._found(found, ~node // _TAIL_STATES, state, cost)
                continue
            if node in self.graph._final:
                if at == total:
                    self._found(found, node, state, cost)
                elif total - at <= MAX_TRAILING_WORDS:  # words heard after a whole sentence
                    # a state of its own per node and number of words dropped, so that it is still
                    # tried after a path that kept the words (in a free-text slot, say)
                    tail = ~(node * _TAIL_STATES + total - at)
                    self.push(cost + TRAILING_WORD * (total - at), (tail, total), state, (), kind="tail")
                continue
            if at < total:  # a heard word the sentence has no place for
                self.push(
                    cost + (EXTRA_ARTICLE if words[at] in ARTICLES else MISS), (node, at + 1), state, ()
                )
            for arc in self.graph._arcs[node]:
                self._follow(arc, cost, state, words, total)
        return found  # popped cheapest first

    def _follow(
        self, arc: _Arc, cost: float, state: tuple[int, int], words: tuple[str, ...], total: int
    ) -> None:
        at = state[1]
        if arc.kind == _EPS:
            self.push(cost, (arc.to, at), state, ())
        elif arc.kind == _WORD:
            self.push(cost + MISS, (arc.to, at), state, (arc.label,))  # not heard
            if at < total:
                heard = words[at]
                article = arc.label in ARTICLES and heard in ARTICLES  # word_distance, inlined: a hot loop
                distance = 0.0 if article else sound_distance(arc.label, heard)
                self.push(cost + distance, (arc.to, at + 1), state, (arc.label,))
            # heard split in two ("can solve", "back up"); the same first letter, or it is too far anyway
            if at + 1 < total and words[at][0] == arc.label[0] and not words[at].isdigit():
                split = sound_distance(arc.label, words[at] + words[at + 1])
                if split <= SPLIT_SOUND:
                    self.push(cost + SPLIT_WORD + split, (arc.to, at + 2), state, (arc.label,), kind="split")
        elif arc.kind == _NUMBER:
            if at < total and words[at].isdigit():
                self.push(cost, (arc.to, at + 1), state, (words[at],))
        elif arc.kind == _FREE:
            for length in range(1, min(MAX_FREE_TEXT_WORDS, total - at) + 1):
                taken = words[at : at + length]
                self.push(cost + FREE_TEXT_WORD * length, (arc.to, at + length), state, taken, kind="free")
        elif arc.kind == _LIVE:
            for name in self.live.get(arc.label, ()):
                for length in range(max(1, len(name) - 1), min(len(name) + 1, total - at) + 1):
                    distance = name_distance(name, words[at : at + length])
                    if distance <= MAX_NAME_DISTANCE * len(name):
                        self.push(cost + distance, (arc.to, at + length), state, name)

    def _found(self, found: list[Nearest], node: int, state: tuple[int, int], cost: float) -> None:
        intent = self.graph._final[node]
        if sum(g.intent == intent for g in found) >= GUESSES_PER_INTENT:
            return
        guess = self._guess(intent, state, cost)
        if guess is not None and guess not in found:
            found.append(guess)

    def _guess(self, intent: str, state: tuple[int, int], cost: float) -> Nearest | None:
        """The sentence on the path to ``state``, if enough of it was really heard.

        Free-text slots take any words, so a guess must rest on the template's own words: at least
        ``MIN_ANCHOR_WORDS`` heard words outside free text and the dropped edges, and at most
        ``max_cost_per_word`` per such word. Otherwise any chatter would pass for "note <chatter>".
        """
        pieces: list[tuple[str, ...]] = []
        free = tail = 0
        explained = template_words = template_heard = 0.0  # weighted: see ``_weight``
        changed = 0
        while state in self.came_from:
            previous, said, kind = self.came_from[state]
            pieces.append(said)
            free += len(said) if kind == "free" else 0
            tail += state[1] - previous[1] if kind == "tail" else 0
            heard = self.words[previous[1] : state[1]]
            fit = self._fit(said, heard, kind)
            explained += fit[0]
            template_words += fit[1]
            template_heard += fit[2]
            changed += kind in ("", "split") and len(said) == 1 and _changes(said[0], "".join(heard))
            state = previous
        lead = state[1]  # words skipped before the sentence began
        anchors = len(self.words) - free - tail - lead
        core = cost - FREE_TEXT_WORD * free - TRAILING_WORD * tail - LEADING_WORD * lead
        exact = anchors >= 1 and core <= 1e-9  # "every" + free text, heard as said
        if (anchors < MIN_ANCHOR_WORDS and not exact) or core > self.per_word * anchors + 1e-9:
            return None
        text = " ".join(word for piece in reversed(pieces) for word in piece)
        if text == self.avoid:
            return None
        coverage = explained / sum(_weight(word) for word in self.words)
        recall = template_heard / template_words if template_words else 1.0
        return Nearest(intent, text, round(cost, 3), round(coverage, 3), round(recall, 3), changed, tail)

    @staticmethod
    def _fit(said: tuple[str, ...], heard: tuple[str, ...], kind: str) -> tuple[float, float, float]:
        """One step of an alignment: (heard words it explains, template words it has, of those heard)."""
        if kind == "free":
            return FREE_TEXT_COVERAGE * sum(_weight(word) for word in heard), 0.0, 0.0
        if kind == "tail" or not said:
            return 0.0, 0.0, 0.0
        if not heard:  # a template word that was not heard
            return 0.0, _weight(said[0]), 0.0
        if len(said) == 1 and len(heard) == 1:
            # a content word is seldom heard as a function word: "tell me about" is no "tell me bot"
            content_as_function = heard[0] in FUNCTION_WORDS and said[0] not in FUNCTION_WORDS
            closeness = 0.0 if content_as_function else _closeness(word_distance(said[0], heard[0]))
            return closeness * _weight(heard[0]), _weight(said[0]), closeness * _weight(said[0])
        if kind == "split":  # one template word heard as two
            closeness = _closeness(sound_distance(said[0], "".join(heard)))
            return closeness * sum(_weight(w) for w in heard), _weight(said[0]), closeness * _weight(said[0])
        # a live name: as close as it sounds, per word of it; names are content words
        closeness = _closeness(name_distance(said, heard) / len(said))
        return closeness * len(heard), len(said), closeness * len(said)


def _changes(expected: str, heard: str) -> bool:
    """Whether hearing ``heard`` for the template word ``expected`` changes the sentence: not for an
    article heard for another (``word_distance``), nor for a preposition heard for another ("the status
    on the backup bot"), which recognisers swap as freely and which say nothing of what is asked."""
    if expected in PREPOSITIONS and heard in PREPOSITIONS:
        return False
    return word_distance(expected, heard) > 0


def _closeness(distance: float) -> float:
    """1 for a word heard as said, falling to 0 at ``CLOSE_SOUND``."""
    return max(0.0, 1.0 - distance / CLOSE_SOUND)


def _weight(word: str) -> float:
    """How much a word counts in coverage: a content word 1, a function word ``FUNCTION_WEIGHT``."""
    return FUNCTION_WEIGHT if word in FUNCTION_WORDS else 1.0


def name_distance(name: Sequence[str], heard: Sequence[str]) -> float:
    """How unlike a name is to the heard words, up to 1 per word of the name: word by word when the counts
    agree, else as one run of letters, since recognisers split and join names ("mac up" for "backup")."""
    if len(name) == len(heard):
        return sum(sound_distance(a, b) for a, b in zip(name, heard, strict=True))
    return sound_distance("".join(name), "".join(heard)) * len(name)


def word_distance(expected: str, heard: str) -> float:
    """``sound_distance``, except that an article heard for another is no change (``ARTICLES``)."""
    if expected != heard and expected in ARTICLES and heard in ARTICLES:
        return 0.0
    return sound_distance(expected, heard)


@lru_cache(maxsize=65_536)
def sound_distance(expected: str, heard: str) -> float:
    """How unlike two words are, 0 (the same) to 1: the smaller of their spelling distance and the distance
    of their Metaphone codes (so "bot"/"but" and "ending"/"pending" are near), each relative to length."""
    if expected == heard:
        return 0.0
    import jellyfish

    spelled = jellyfish.levenshtein_distance(expected, heard) / max(len(expected), len(heard))
    if expected.isdigit() or heard.isdigit():
        return 1.0 if spelled else 0.0
    code_a, code_b = jellyfish.metaphone(expected), jellyfish.metaphone(heard)
    if not code_a or not code_b:
        return min(1.0, spelled)
    sounded = jellyfish.levenshtein_distance(code_a, code_b) / max(len(code_a), len(code_b))
    return min(1.0, spelled, max(sounded, SAME_SOUND))
