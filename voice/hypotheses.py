"""Choosing among Whisper's best readings of a command by what the commands' grammar makes of each.

Whisper's top reading of robotic or unclear speech is often one of several it found almost as likely
("and lift the modules" beside "list the schedules", "check the number" beside "check the oven"). The
beams of one beam search cost nothing more, so a voice turn asks the turn's own recognizer what each
reading means and keeps the meaning the readings agree on:

- readings that mean the same commands (same tools, same arguments) pool their probability;
- a meaning that is a command beats "no command", but only readings within ``MARGIN`` of the top one
  (mean log-probability per token) take part, so chatter heard as chatter stays chatter;
- among commands, one heard as said beats one only a correction of the words reaches
  (``Understanding.rank``), then the one with more probability wins; ties go to the more likely reading;
- a meaning is spoken by its best-understood reading ("show pending approvals" rather than the likelier
  "show ending approvals" with the same meaning), so the turn need not read back a correction.

Pure: the caller passes ``understand`` (text -> ``Understanding``) in.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, replace
from enum import IntEnum

from voice.spoken import normalize_transcript
from voice.transcript import Hypothesis, Transcript

__all__ = ["MARGIN", "Rank", "Understanding", "choose_reading", "meaning_of"]

MARGIN = 0.3
"""How much lower (mean log-probability per token) than the top reading another may be and still take
part. Measured on the spoken-command clips: the readings that fixed a miss were within 0.25 of the top;
at 0.5 a sampled "every Monday at 5 p.m." (said: "at nine") outvoted "no command"."""


class Rank(IntEnum):
    """How well a reading is understood, worst first."""

    NONE = 0
    """No command (chatter, or nothing the templates know)."""
    UNKNOWN_NAME = 1
    """A command naming a bot, schedule or reminder nobody has."""
    CORRECTED = 2
    """A command only once the misheard words are corrected (``Recognizer.recognize_heard``)."""
    HEARD = 3
    """A command in the words as heard, naming only things that exist."""


@dataclass(frozen=True)
class Understanding:
    """What a turn makes of one reading."""

    rank: Rank
    meaning: Hashable = ()
    """The commands it gives (e.g. tools and arguments), equal for readings that mean the same."""


@dataclass
class _Meaning:
    rank: Rank
    """The best rank of its readings."""
    mass: float
    """The summed probability of its readings."""
    best: Hypothesis
    """Its reading of that rank most likely."""


async def choose_reading(
    transcript: Transcript,
    understand: Callable[[str], Awaitable[Understanding]],
    *,
    margin: float = MARGIN,
) -> Transcript:
    """``transcript`` with the reading whose meaning wins (module docstring) as its text and probability;
    unchanged when it has no alternatives or none of them is a command. ``understand`` gets each reading
    normalised (``normalize_transcript``), once per distinct words (case and punctuation aside)."""
    if len(transcript.alternatives) < 2:
        return transcript
    top = transcript.alternatives[0]
    floor = _log(top.probability) - margin
    seen: dict[str, Understanding] = {}
    meanings: dict[Hashable, _Meaning] = {}
    for hypothesis in transcript.alternatives:
        if _log(hypothesis.probability) < floor:
            continue
        text = normalize_transcript(hypothesis.text)
        words = " ".join(_WORDS.findall(text.lower()))  # "List the mod" and "list the mod." read alike
        if not words:
            continue
        if words not in seen:
            seen[words] = await understand(text)
        understood = seen[words]
        meaning = meanings.get(understood.meaning)
        if meaning is None:
            meanings[understood.meaning] = _Meaning(understood.rank, hypothesis.probability, hypothesis)
            continue
        meaning.mass += hypothesis.probability
        if understood.rank > meaning.rank:  # the same commands heard as said: no correction to read back
            meaning.rank, meaning.best = understood.rank, hypothesis
    commands = [m for m in meanings.values() if m.rank >= Rank.CORRECTED]
    if not commands:
        return transcript
    chosen = max(commands, key=lambda m: (m.rank, m.mass, m.best.probability)).best
    if chosen is top:
        return transcript
    return replace(transcript, text=chosen.text, probability=chosen.probability)


_WORDS = re.compile(r"[\w'.:-]*\w")
_SECONDS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d):\d\d(?:\.\d+)?")


def meaning_of(calls: Iterable[tuple[str, Mapping[str, object]]]) -> Hashable:
    """A hashable form of tool calls (tool, arguments) for ``Understanding.meaning``: two readings parsed
    a moment apart give times seconds apart ("in 10 minutes"), so times count to the minute."""
    return tuple(
        (tool, json.dumps(arguments, sort_keys=True, default=str, separators=(",", ":")))
        for tool, arguments in (
            (tool, {key: _minute(value) for key, value in arguments.items()}) for tool, arguments in calls
        )
    )


def _minute(value: object) -> object:
    return _SECONDS.sub(r"\1", value) if isinstance(value, str) else value


def _log(probability: float) -> float:
    return math.log(max(probability, 1e-12))
