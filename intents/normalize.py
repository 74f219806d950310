"""Text normalisation before matching: case, punctuation, contractions, fillers and numbers in words.

The result keeps, for every normalised word, the span of the original text it came from, so free-text
slots (a fact, a reminder's text) can be handed to tools in the person's own wording.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = ["MAX_CHARS", "Utterance", "normalize", "words_to_number"]

MAX_CHARS = 2000
"""Only this many characters of an utterance are looked at; commands are short."""

_TOKEN = re.compile(r"\S+")
_INNER_SPLIT = re.compile(r"[^\w:'\-./@#+]+")
_EDGE = "'\"`.,;:!?-_/()[]{}<>«»“”\u2018\u2019…*~|\\^=&%$#@+"
_BREAK_CHARS = set(",;.!?")
_MERIDIEM = re.compile(r"^(\d{1,4}(?::\d{2})?)?([ap])\.?m\.?$")
_DOTTED_CLOCK = re.compile(r"^(\d{1,2})\.([0-5]\d)(?=$|[ap]\.?m\.?$|[,;!?]+$|\.$)")
"""A clock written with a dot, as speech recognisers often do ("3.30", "2.45pm"): read as "3:30"."""
_ORDINAL_DIGITS = re.compile(r"^(\d+)(st|nd|rd|th)$")
_UNIT_SUFFIX = re.compile(r"^(\d{1,4})(s|sec|secs|m|min|mins|h|hr|hrs|d)$")
"""A number with its unit glued on ("30m", "2h"); at most four digits, so an id prefix such as "5470427d"
stays one word."""
_UNIT_WORDS = {
    "s": "seconds", "sec": "seconds", "secs": "seconds", "m": "minutes", "min": "minutes",
    "mins": "minutes", "h": "hours", "hr": "hours", "hrs": "hours", "d": "days",
}  # fmt: skip

_CONTRACTIONS = {
    "what's": ("what", "is"), "whats": ("what", "is"), "where's": ("where", "is"), "who's": ("who", "is"),
    "how's": ("how", "is"), "when's": ("when", "is"), "it's": ("it", "is"), "that's": ("that", "is"),
    "there's": ("there", "is"), "here's": ("here", "is"), "let's": ("let", "us"), "i'm": ("i", "am"),
    "im": ("i", "am"), "you're": ("you", "are"), "we're": ("we", "are"), "they're": ("they", "are"),
    "what're": ("what", "are"), "i've": ("i", "have"), "i'll": ("i", "will"), "i'd": ("i", "would"),
    "don't": ("do", "not"), "dont": ("do", "not"), "doesn't": ("does", "not"), "didn't": ("did", "not"),
    "can't": ("can", "not"), "cant": ("can", "not"), "cannot": ("can", "not"), "won't": ("will", "not"),
    "isn't": ("is", "not"), "aren't": ("are", "not"), "wasn't": ("was", "not"),
    "shouldn't": ("should", "not"), "wouldn't": ("would", "not"), "couldn't": ("could", "not"),
    "haven't": ("have", "not"),
    "gimme": ("give", "me"), "lemme": ("let", "me"), "wanna": ("want", "to"), "gonna": ("going", "to"),
}  # fmt: skip
_DROP = {
    "o'clock",
    "oclock",
    "um",
    "umm",
    "uh",
    "uhh",
    "uhm",
    "er",
    "erm",
    "hmm",
    "please",
    "pls",
    "plz",
    "kindly",
}

_UNITS = {
    "zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
         "eighty": 80, "ninety": 90}  # fmt: skip
_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13, "fourteenth": 14,
    "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18, "nineteenth": 19,
    "twentieth": 20, "thirtieth": 30,
}  # fmt: skip
_SCALES = {"hundred": 100, "thousand": 1000}
_NUMBER_WORDS = set(_UNITS) | set(_TENS) | set(_ORDINALS) | set(_SCALES)
# "one" after these words is a pronoun ("that one"), not a number.
_ONE_PRONOUN_AFTER = {"that", "this", "which", "the", "each", "any", "no", "some", "every", "other", "last"}
# "second" is a unit of time far more often than an ordinal in commands.
_ORDINAL_ONLY_AFTER = {"the", "on", "of"}

_POLITE_PREFIXES = (
    ("hey",), ("hi",), ("ok",), ("okay",), ("so",), ("well",), ("oh",), ("alright",), ("now",),
    ("kommandant",), ("commander",), ("assistant",), ("computer",),
    ("could", "you"), ("can", "you"), ("would", "you"), ("will", "you"),
    ("i", "want", "you", "to"), ("i", "would", "like", "you", "to"), ("i", "need", "you", "to"),
    ("would", "you", "mind"), ("go", "ahead", "and"), ("be", "so", "kind", "and"),
)  # fmt: skip
_POLITE_SUFFIXES = (
    ("for", "me"),
    ("thanks",),
    ("thank", "you"),
    ("thx",),
    ("kommandant",),
    ("now", "please"),
)


@dataclass(frozen=True, slots=True)
class Utterance:
    """Normalised words of an utterance, each with the span of original text it came from."""

    original: str
    words: tuple[str, ...]
    spans: tuple[tuple[int, int], ...]
    breaks: frozenset[int] = frozenset()
    """Word indices that start a new clause (a ',', ';', '.', '!' or '?' came before them)."""

    @property
    def text(self) -> str:
        """The normalised words joined by single spaces: what the templates are matched against."""
        return " ".join(self.words)

    def __len__(self) -> int:
        return len(self.words)

    def slice(self, start: int, end: int) -> Utterance:
        """The words ``start:end`` as an utterance of their own (spans still point into ``original``)."""
        breaks = frozenset(i - start for i in self.breaks if start < i < end)
        return Utterance(self.original, self.words[start:end], self.spans[start:end], breaks)

    def original_text(self, start: int, end: int) -> str:
        """The original text behind words ``start:end``, without surrounding punctuation or quotes."""
        if start >= end:
            return ""
        text = self.original[self.spans[start][0] : self.spans[end - 1][1]]
        return text.strip().strip("\"'`“”\u2018\u2019«»").rstrip(",;:!?.").strip()

    def word_index(self, char_offset: int) -> int:
        """The index of the word at ``char_offset`` in ``text`` (offsets between words round up)."""
        position = 0
        for index, word in enumerate(self.words):
            if char_offset < position + len(word):
                return index
            position += len(word) + 1
        return len(self.words)


def words_to_number(words: list[str]) -> tuple[int, int] | None:
    """Parse number words at the start of ``words``; return (value, words used) or None."""
    total, current, used = 0, 0, 0
    last: str | None = None  # "unit", "teen", "tens", "scale"
    for index, word in enumerate(words):
        if word in _ORDINALS and last in (None, "tens"):
            value = _ORDINALS[word]
            if last == "tens" and value >= 10:
                break
            return total + current + value, index + 1
        if word in _UNITS and word != "oh":
            value = _UNITS[word]
            if last in ("unit", "teen") or (last == "tens" and value >= 10):
                break
            current += value
            last = "teen" if value >= 10 else "unit"
        elif word in _TENS:
            if last in ("unit", "teen", "tens"):
                break
            current += _TENS[word]
            last = "tens"
        elif word in _SCALES and last in (None, "unit", "teen", "tens"):
            scale = _SCALES[word]
            current = current or 1
            if scale == 100:
                current *= 100
            else:
                total += current * scale
                current = 0
            last = "scale"
        elif (
            word == "and" and last == "scale" and index + 1 < len(words) and words[index + 1] in _NUMBER_WORDS
        ):
            continue
        else:
            break
        used = index + 1
    if used == 0:
        return None
    return total + current, used


def _split_token(raw: str) -> tuple[list[str], bool]:
    """Normalise one whitespace-separated token into words; also say whether a clause ends after it."""
    ends_clause = raw[-1] in _BREAK_CHARS if raw else False
    token = raw.lower().replace("\u2019", "'").replace("\u2018", "'")
    token = _DOTTED_CLOCK.sub(r"\1:\2", token)
    match = _MERIDIEM.match(token.rstrip(",;!?"))
    if match:
        clock, letter = match.groups()
        meridiem = "am" if letter == "a" else "pm"
        return ([clock, meridiem] if clock else [meridiem]), ends_clause and not token.endswith(".")
    words: list[str] = []
    for piece in _INNER_SPLIT.split(token):
        piece = piece.strip(_EDGE)
        if not piece:
            continue
        if "-" in piece and all(part in _NUMBER_WORDS for part in piece.split("-") if part):
            words.extend(part for part in piece.split("-") if part)
            continue
        words.extend(_split_word(piece))
    return words, ends_clause


def _split_word(word: str) -> list[str]:
    if word in _CONTRACTIONS:
        return list(_CONTRACTIONS[word])
    if word.endswith("'s"):
        return [word[:-2]]
    if word.endswith("s'"):
        return [word[:-1]]
    match = _ORDINAL_DIGITS.match(word)
    if match:
        return [match.group(1)]
    match = _UNIT_SUFFIX.match(word)
    if match:
        return [match.group(1), _UNIT_WORDS[match.group(2)]]
    match = re.match(r"^(\d{1,4}(?::\d{2})?)([ap]m)$", word)
    if match:
        return [match.group(1), match.group(2)]
    return [word]


def _numbers(words: list[str], spans: list[tuple[int, int]]) -> tuple[list[str], list[tuple[int, int]]]:
    """Replace runs of number words with digits, merging their spans."""
    out_words: list[str] = []
    out_spans: list[tuple[int, int]] = []
    index = 0
    while index < len(words):
        word = words[index]
        previous = out_words[-1] if out_words else ""
        parsed = None
        pronoun = word == "one" and previous in _ONE_PRONOUN_AFTER
        unit_of_time = word == "second" and previous not in _ORDINAL_ONLY_AFTER
        if word in _NUMBER_WORDS and not pronoun and not unit_of_time:
            parsed = words_to_number(words[index:])
        if parsed is None:
            out_words.append(word)
            out_spans.append(spans[index])
            index += 1
            continue
        value, used = parsed
        out_words.append(str(value))
        out_spans.append((spans[index][0], spans[index + used - 1][1]))
        index += used
    return out_words, out_spans


_TIME_UNITS = {"second", "seconds", "minute", "minutes", "hour", "hours", "day", "days", "week", "weeks"}


def _misheard_in(words: list[str]) -> None:
    """ "in 20 minutes" said after a pause is often heard as "and 20 minutes" (or "an"): at the start of an
    utterance, before a duration, it can only have been "in"."""
    if len(words) < 3 or words[0] not in ("and", "an", "end"):
        return
    amount = words[1]
    if (amount.isdigit() or amount in ("a", "an", "half")) and (
        words[2] in _TIME_UNITS or (len(words) > 3 and words[3] in _TIME_UNITS)
    ):
        words[0] = "in"


def _strip_affixes(words: list[str], spans: list[tuple[int, int]]) -> int:
    """Drop polite openings and closings in place; return how many words were dropped at the start."""
    dropped = 0
    changed = True
    while changed and words:
        changed = False
        for prefix in _POLITE_PREFIXES:
            if len(words) > len(prefix) and tuple(words[: len(prefix)]) == prefix:
                del words[: len(prefix)], spans[: len(prefix)]
                dropped += len(prefix)
                changed = True
                break
    changed = True
    while changed and words:
        changed = False
        for suffix in _POLITE_SUFFIXES:
            if len(words) > len(suffix) and tuple(words[-len(suffix) :]) == suffix:
                del words[-len(suffix) :], spans[-len(suffix) :]
                changed = True
                break
    return dropped


def normalize(text: str) -> Utterance:
    """Normalise an utterance (typed or transcribed) for matching.

    Lowercases, folds unicode, expands contractions, drops filler words and polite openings, splits
    "5pm" into "5 pm", turns number words into digits ("twenty five" -> "25") and remembers where
    clauses end. Never raises; only the first ``MAX_CHARS`` characters are read.
    """
    original = unicodedata.normalize("NFKC", text[:MAX_CHARS])
    original = "".join(ch if ch.isprintable() else " " for ch in original)
    words: list[str] = []
    spans: list[tuple[int, int]] = []
    break_after: set[int] = set()
    for match in _TOKEN.finditer(original):
        token_words, ends_clause = _split_token(match.group(0))
        for word in token_words:
            if word in _DROP:
                continue
            words.append(word)
            spans.append(match.span())
        if ends_clause and words:
            break_after.add(len(words))
    # Clause breaks are word positions; number merging and affix stripping renumber words.
    marked = [
        (word, span, (i + 1) in break_after) for i, (word, span) in enumerate(zip(words, spans, strict=True))
    ]
    breaks_by_end = {span[1] for _, span, is_break in marked if is_break}
    words, spans = _numbers(words, spans)
    _misheard_in(words)
    _strip_affixes(words, spans)
    breaks = frozenset(i for i in range(1, len(words)) if spans[i - 1][1] in breaks_by_end)
    return Utterance(original, tuple(words), tuple(spans), breaks)
