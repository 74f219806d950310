"""Times, dates, durations and recurrences, resolved against a fixed ``now``."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from intents import normalize, parse_duration, parse_moment, parse_recurrence
from intents.timeparse import parse_clock, split_moment, split_recurrence

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2025, 6, 11, 10, 0, tzinfo=BERLIN)  # a Wednesday


def words(text: str) -> tuple[str, ...]:
    return normalize(text).words


def at(day: int, hour: int, minute: int = 0, month: int = 6, year: int = 2025) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("in ten minutes", at(11, 10, 10)),
        ("in an hour", at(11, 11)),
        ("in a minute", at(11, 10, 1)),
        ("in 2 hours and 30 minutes", at(11, 12, 30)),
        ("in an hour and a half", at(11, 11, 30)),
        ("in half an hour", at(11, 10, 30)),
        ("in a quarter hour", at(11, 10, 15)),
        ("twenty minutes from now", at(11, 10, 20)),
        ("in 3 days", at(14, 10)),
        ("at five pm tomorrow", at(12, 17)),
        ("tomorrow at 5 pm", at(12, 17)),
        ("tomorrow at five", at(12, 17)),
        ("tomorrow at 8", at(12, 8)),
        ("at 5", at(11, 17)),
        ("at 9", at(11, 21)),  # 9 am has passed: the evening
        ("at 11", at(11, 11)),
        ("at 9 am", at(12, 9)),  # passed today: tomorrow
        ("at 23:15", at(11, 23, 15)),
        ("at nine thirty", at(11, 21, 30)),
        ("at 9 30 am tomorrow", at(12, 9, 30)),
        ("at half past nine tomorrow", at(12, 9, 30)),
        ("quarter to five", at(11, 16, 45)),
        ("ten past eleven", at(11, 11, 10)),
        ("at noon", at(11, 12)),
        ("at midnight", at(12, 0)),
        ("tonight", at(11, 21)),
        ("this evening", at(11, 18)),
        ("this afternoon", at(11, 15)),
        ("tomorrow morning", at(12, 9)),
        ("tomorrow evening at 7", at(12, 19)),
        ("at 7 in the evening", at(11, 19)),
        ("tomorrow", at(12, 9)),
        ("the day after tomorrow", at(13, 9)),
        ("next friday at 9:30", at(13, 9, 30)),
        ("on friday", at(13, 9)),
        ("friday at 5 pm", at(13, 17)),
        ("on wednesday", at(18, 9)),  # today's 9:00 has passed: next week
        ("wednesday at 6 pm", at(11, 18)),
        ("next monday", at(16, 9)),
        ("on december 3rd at noon", at(3, 12, month=12)),
        ("december third at noon", at(3, 12, month=12)),
        ("on the 3rd of december", at(3, 9, month=12)),
        ("at noon on december 3", at(3, 12, month=12)),
        ("on may 1", at(1, 9, month=5, year=2026)),  # passed this year
        ("june 20 2026", at(20, 9, year=2026)),
        ("on the 20th", at(20, 9)),
        ("on 2025-07-04", at(4, 9, month=7)),
    ],
)
def test_moments(text: str, expected: datetime) -> None:
    assert parse_moment(words(text), NOW) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "in",
        "at",
        "soon",
        "in 5",
        "at 25",
        "at 5 pm pm",
        "on february 30",
        "call mom",
        "in many minutes",
        "at 13 pm",
        "next",
        "tomorrow tomorrow",
        "in 0 minutes",
        "half to nine",
    ],
)
def test_not_moments(text: str) -> None:
    assert parse_moment(words(text), NOW) is None


def test_moment_needs_an_aware_now() -> None:
    assert parse_moment(["tomorrow"], NOW.replace(tzinfo=None)) is None


def test_relative_moments_cross_daylight_saving_in_real_time() -> None:
    before_switch = datetime(2025, 10, 26, 1, 30, tzinfo=BERLIN)
    moment = parse_moment(words("in two hours"), before_switch)
    assert moment is not None
    assert moment - before_switch == timedelta(hours=2) or moment.astimezone(
        ZoneInfo("UTC")
    ) - before_switch.astimezone(ZoneInfo("UTC")) == timedelta(hours=2)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("an hour", 3600),
        ("10 minutes", 600),
        ("an hour and a half", 5400),
        ("half an hour", 1800),
        ("2 days", 172800),
        ("1 hour 30 minutes", 5400),
        ("a couple of minutes", 120),
        ("90 seconds", 90),
    ],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(words(text)) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "hour", "minutes 10", "ten", "a", "an hour and"])
def test_not_durations(text: str) -> None:
    assert parse_duration(words(text)) is None


@pytest.mark.parametrize(
    ("text", "clock"),
    [
        ("5 pm", (17, 0)),
        ("12 am", (0, 0)),
        ("12 pm", (12, 0)),
        ("9:30", (9, 30)),
        ("quarter past 3", (15, 15)),
        ("noon", (12, 0)),
        ("21 45", (21, 45)),
    ],
)
def test_clocks(text: str, clock: tuple[int, int]) -> None:
    parsed = parse_clock(words(text))
    assert parsed is not None
    resolved = parsed.resolve()
    assert (resolved.hour, resolved.minute) == clock


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("every monday at nine", {"cron": "0 9 * * 1"}),
        ("every 15 minutes", {"every_seconds": 900}),
        ("every fifteen minutes", {"every_seconds": 900}),
        ("every minute", {"every_seconds": 60}),
        ("every hour", {"every_seconds": 3600}),
        ("every half hour", {"every_seconds": 1800}),
        ("hourly", {"every_seconds": 3600}),
        ("every day", {"every_seconds": 86400}),
        ("every day at 7 am", {"cron": "0 7 * * *"}),
        ("daily at 7", {"cron": "0 7 * * *"}),
        ("every weekday at 8:30", {"cron": "30 8 * * 1-5"}),
        ("every weekend at 10", {"cron": "0 10 * * 0,6"}),
        ("every monday and friday at 9", {"cron": "0 9 * * 1,5"}),
        ("on mondays at 9", {"cron": "0 9 * * 1"}),
        ("every sunday at ten thirty pm", {"cron": "30 22 * * 0"}),
        ("every morning", {"cron": "0 9 * * *"}),
        ("every evening at 6", {"cron": "0 18 * * *"}),
        ("at 9 every day", {"cron": "0 9 * * *"}),
        ("at 7 am every monday", {"cron": "0 7 * * 1"}),
        ("every month on the 1st at 9", {"cron": "0 9 1 * *"}),
        ("every other day at 8", {"cron": "0 8 */2 * *"}),
        ("every 2 weeks", {"every_seconds": 1209600}),
        ("tomorrow at 5", {"at": at(12, 17)}),
        ("in an hour", {"at": at(11, 11)}),
    ],
)
def test_recurrences(text: str, expected: dict[str, object]) -> None:
    assert parse_recurrence(words(text), NOW) == expected


@pytest.mark.parametrize(
    "text", ["", "every", "every blue moon", "each time", "daily daily", "weekly at 9 pm friday"]
)
def test_not_recurrences(text: str) -> None:
    assert parse_recurrence(words(text), NOW) is None


def test_split_prefers_the_longest_time_at_the_end() -> None:
    text = words("call mom tomorrow at 5 pm")
    assert split_moment(text, NOW) == (2, 6, at(12, 17))
    assert split_moment(words("at 5 pm tomorrow to call mom"), NOW) == (0, 4, at(12, 17))
    assert split_moment(words("call mom"), NOW) is None
    assert split_moment(words("tomorrow"), NOW) is None  # nothing would remain


def test_split_recurrence_at_either_end() -> None:
    assert split_recurrence(words("every monday at 9 start the backup bot"), NOW) == (
        0,
        4,
        {"cron": "0 9 * * 1"},
    )
    assert split_recurrence(words("start the backup bot every hour"), NOW) == (4, 6, {"every_seconds": 3600})
