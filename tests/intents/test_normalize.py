"""Normalisation of typed and spoken utterances."""

from __future__ import annotations

import pytest

from intents import normalize
from intents.normalize import MAX_CHARS, words_to_number


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Start the Backup Bot!", "start the backup bot"),
        ("What's my editor?", "what is my editor"),
        ("um, uh, could you please start the backup bot", "start the backup bot"),
        ("hey kommandant can you restart it thanks", "restart it"),
        ("remind me at 5pm", "remind me at 5 pm"),
        ("remind me at five p.m.", "remind me at 5 pm"),
        ("at 9:30am", "at 9:30 am"),
        ("at five o'clock", "at 5"),
        ("twenty five minutes", "25 minutes"),
        ("twenty-five minutes", "25 minutes"),
        ("one hundred and five", "105"),
        ("two thousand twenty six", "2026"),
        ("nine thirty", "9 30"),
        ("december third", "december 3"),
        ("on the 3rd", "on the 3"),
        ("in a second", "in a second"),
        ("the second of may", "the 2 of may"),
        ("stop that one", "stop that one"),
        ("the crawler's logs", "the crawler logs"),
        ("in 15min", "in 15 minutes"),
        ("approve a1b2-c3d4", "approve a1b2-c3d4"),
        ("approve 5470427d", "approve 5470427d"),  # an id prefix, not 5,470,427 days
        ("in 3d", "in 3 days"),
        ("start the web-crawler", "start the web-crawler"),
        ("🤖 start 🤖 the bot", "start the bot"),
        ("", ""),
    ],
)
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text).text == expected


def test_spans_point_into_the_original() -> None:
    utterance = normalize("Remember that my Editor is Neovim, please!")
    assert utterance.words[-1] == "neovim"
    assert utterance.original_text(2, len(utterance)) == "my Editor is Neovim"


def test_numbers_keep_their_original_words() -> None:
    utterance = normalize("I have twenty five cats")
    assert utterance.words == ("i", "have", "25", "cats")
    assert utterance.original_text(0, 4) == "I have twenty five cats"


def test_clause_breaks_are_kept() -> None:
    utterance = normalize("stop the crawler, restart the mailer. status")
    assert utterance.breaks == frozenset({3, 6})
    assert utterance.slice(3, 6).words == ("restart", "the", "mailer")


def test_long_input_is_capped() -> None:
    assert len(normalize("a " * 100_000).original) == MAX_CHARS


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["twenty", "five"], (25, 2)),
        (["five", "twenty"], (5, 1)),
        (["hundred"], (100, 1)),
        (["cats"], None),
        (["third"], (3, 1)),
        (["twenty", "first"], (21, 2)),
    ],
)
def test_words_to_number(words: list[str], expected: tuple[int, int] | None) -> None:
    assert words_to_number(words) == expected
