"""Choosing among Whisper's best readings by what each means (voice.hypotheses): pure, inline data."""

from __future__ import annotations

import math

import pytest

from voice.hypotheses import MARGIN, Rank, Understanding, choose_reading, meaning_of
from voice.transcript import Hypothesis, Transcript

MEANINGS = {
    "list the schedules": Understanding(Rank.HEARD, "schedules_list"),
    "show ending approvals": Understanding(Rank.CORRECTED, "approvals_list"),
    "show pending approvals": Understanding(Rank.HEARD, "approvals_list"),
    "remind me to check the number in 25 minutes": Understanding(Rank.HEARD, "check the number"),
    "remind me to check the oven in 25 minutes": Understanding(Rank.HEARD, "check the oven"),
}


def heard(*readings: tuple[str, float]) -> Transcript:
    """A transcript of readings given as (text, mean log-probability per token), most likely first."""
    alternatives = tuple(Hypothesis(text, math.exp(log_prob)) for text, log_prob in readings)
    return Transcript(
        text=alternatives[0].text, probability=alternatives[0].probability, alternatives=alternatives
    )


async def choose(transcript: Transcript) -> tuple[str, list[str]]:
    asked: list[str] = []

    async def understand(text: str) -> Understanding:
        asked.append(text)
        return MEANINGS.get(text.lower().rstrip("."), Understanding(Rank.NONE))

    return (await choose_reading(transcript, understand)).text, asked


async def test_a_reading_that_is_a_command_beats_one_that_is_none_when_nearly_as_likely() -> None:
    transcript = heard(("and lift the modules.", -1.19), ("list the schedules.", -1.20))
    chosen = await choose_reading(transcript, _understood)
    assert chosen.text == "list the schedules."
    assert (
        chosen.probability == pytest.approx(math.exp(-1.20))
        and chosen.alternatives == transcript.alternatives
    )


async def _understood(text: str) -> Understanding:
    return MEANINGS.get(text.lower().rstrip("."), Understanding(Rank.NONE))


async def test_chatter_stays_chatter() -> None:
    """No reading is a command, or the command is much less likely than what was heard: the top stays."""
    text, asked = await choose(heard(("how's it going", -0.4), ("how is it going", -0.5)))
    assert text == "how's it going" and asked == ["how's it going", "how is it going"]
    far = heard(("and lift the modules.", -0.9), ("list the schedules.", -0.9 - MARGIN - 0.05))
    assert (await choose(far))[0] == "and lift the modules."


async def test_readings_that_mean_the_same_pool_their_probability() -> None:
    """Two beams say "oven", one (the top) says "number": the meaning with more probability wins."""
    text, _ = await choose(
        heard(
            ("Remind me to check the number in 25 minutes", -0.42),
            ("Remind me to check the oven in 25 minutes.", -0.48),
            ("Remind me to check the oven in 25 minutes!", -0.50),
        )
    )
    assert text == "Remind me to check the oven in 25 minutes."


async def test_a_command_heard_as_said_beats_a_corrected_one() -> None:
    """Both mean the pending approvals; the reading that needs no correction speaks for them."""
    text, _ = await choose(heard(("show ending approvals.", -0.97), ("show pending approvals.", -0.99)))
    assert text == "show pending approvals."
    text, _ = await choose(heard(("show ending approvals.", -0.97), ("show and bring approvals.", -0.99)))
    assert text == "show ending approvals."


async def test_one_reading_is_taken_as_it_is_and_each_text_is_understood_once() -> None:
    single = Transcript(text="list the mod")
    assert await choose_reading(single, _understood) is single
    _, asked = await choose(heard(("list the mod.", -1.1), ("List the mod", -1.15), ("list the mod.", -1.2)))
    assert asked == ["list the mod."]


def test_meanings_count_times_to_the_minute() -> None:
    first = meaning_of([("reminders_create", {"text": "stretch", "due": "2026-12-07T10:25:13.51+00:00"})])
    again = meaning_of([("reminders_create", {"due": "2026-12-07T10:25:59+00:00", "text": "stretch"})])
    later = meaning_of([("reminders_create", {"text": "stretch", "due": "2026-12-07T10:26:00+00:00"})])
    assert first == again != later
