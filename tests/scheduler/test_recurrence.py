"""When a schedule runs next: cron on the wall clock of its time zone (cronsim), intervals in elapsed
time, across both 2027 clock changes of Europe/Copenhagen and America/New_York; and the recurrences the
recognizer reads ("every night at 2" is 2:00, not 14:00)."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim
from hypothesis import given, settings
from hypothesis import strategies as st

from intents.timeparse import parse_recurrence
from tools.builtin.schedules import Recurrence

ZONES = ("Europe/Copenhagen", "America/New_York")
# the clock changes of 2027: spring forward, fall back
CHANGES = {
    "Europe/Copenhagen": (datetime(2027, 3, 28, 1, tzinfo=UTC), datetime(2027, 10, 31, 1, tzinfo=UTC)),
    "America/New_York": (datetime(2027, 3, 14, 7, tzinfo=UTC), datetime(2027, 11, 7, 6, tzinfo=UTC)),
}


def _utc(zone: str, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone), fold=fold).astimezone(UTC)  # type: ignore[misc,arg-type]


def _near_a_change() -> st.SearchStrategy[tuple[str, datetime]]:
    """A zone and a moment within three days of one of its 2027 clock changes (to the second)."""
    return st.sampled_from([(zone, change) for zone in ZONES for change in CHANGES[zone]]).flatmap(
        lambda zc: st.integers(-3 * 86400, 3 * 86400).map(lambda s: (zc[0], zc[1] + timedelta(seconds=s)))
    )


def _runs(recurrence: Recurrence, zone: str, start: datetime, until: datetime) -> list[datetime]:
    found, moment = [], recurrence.next_after(start, zone, anchor=start)
    while moment is not None and moment < until:
        found.append(moment)
        moment = recurrence.next_after(moment, zone, anchor=moment)
    return found


# ---------------------------------------------------------------- the clock changes, case by case


@pytest.mark.parametrize(
    ("zone", "cron", "after", "expected"),
    [
        # 02:30 does not exist on 28 March in Copenhagen: once, right after the jump (03:00 CEST)
        (
            "Europe/Copenhagen",
            "30 2 * * *",
            _utc("Europe/Copenhagen", 2027, 3, 27, 12),
            _utc("Europe/Copenhagen", 2027, 3, 28, 3),
        ),
        (
            "Europe/Copenhagen",
            "30 2 * * *",
            _utc("Europe/Copenhagen", 2027, 3, 28, 3),
            _utc("Europe/Copenhagen", 2027, 3, 29, 2, 30),
        ),
        # 02:30 happens twice on 31 October: once, in the first pass (CEST), then the next day
        (
            "Europe/Copenhagen",
            "30 2 * * *",
            _utc("Europe/Copenhagen", 2027, 10, 30, 12),
            _utc("Europe/Copenhagen", 2027, 10, 31, 2, 30),
        ),
        (
            "Europe/Copenhagen",
            "30 2 * * *",
            _utc("Europe/Copenhagen", 2027, 10, 31, 2, 30),
            _utc("Europe/Copenhagen", 2027, 11, 1, 2, 30),
        ),
        (
            "Europe/Copenhagen",
            "30 2 * * *",
            _utc("Europe/Copenhagen", 2027, 10, 31, 2, 10, fold=1),
            _utc("Europe/Copenhagen", 2027, 11, 1, 2, 30),
        ),
        # New York springs forward at 2:00 on 14 March and falls back at 2:00 on 7 November
        (
            "America/New_York",
            "30 2 * * *",
            _utc("America/New_York", 2027, 3, 13, 12),
            _utc("America/New_York", 2027, 3, 14, 3),
        ),
        (
            "America/New_York",
            "30 1 * * *",
            _utc("America/New_York", 2027, 11, 6, 12),
            _utc("America/New_York", 2027, 11, 7, 1, 30),
        ),
        (
            "America/New_York",
            "30 1 * * *",
            _utc("America/New_York", 2027, 11, 7, 1, 30),
            _utc("America/New_York", 2027, 11, 8, 1, 30),
        ),
        # a fixed time away from the change keeps its wall-clock time across it (9:00 before and after)
        (
            "America/New_York",
            "0 9 * * 1",
            _utc("America/New_York", 2027, 11, 5, 12),
            _utc("America/New_York", 2027, 11, 8, 9),
        ),
        (
            "Europe/Copenhagen",
            "0 9 * * 1-5",
            _utc("Europe/Copenhagen", 2027, 3, 26, 10),
            _utc("Europe/Copenhagen", 2027, 3, 29, 9),
        ),
    ],
)
def test_cron_across_clock_changes(zone: str, cron: str, after: datetime, expected: datetime) -> None:
    assert Recurrence(cron=cron).next_after(after, zone) == expected


def test_a_wildcard_hour_runs_in_both_passes_of_the_repeated_hour() -> None:
    """'*/30 * * * *' is every half hour of real time: 50 runs on the 25-hour day, 46 on the 23-hour day."""
    every_half_hour = Recurrence(cron="*/30 * * * *")
    for zone, day, count in (
        ("Europe/Copenhagen", date(2027, 10, 31), 50),
        ("Europe/Copenhagen", date(2027, 3, 28), 46),
        ("America/New_York", date(2027, 11, 7), 50),
        ("America/New_York", date(2027, 3, 14), 46),
    ):
        tz = ZoneInfo(zone)
        start = datetime.combine(day, datetime.min.time(), tz).astimezone(UTC) - timedelta(seconds=1)
        until = datetime.combine(day + timedelta(days=1), datetime.min.time(), tz).astimezone(UTC)
        runs = _runs(every_half_hour, zone, start, until)
        assert len(runs) == count, (zone, day)
        assert {b - a for a, b in itertools.pairwise(runs)} == {timedelta(minutes=30)}


# ---------------------------------------------------------------- properties, against the library


@settings(max_examples=300, deadline=None)
@given(
    near=_near_a_change(),
    minute=st.integers(0, 59),
    hour=st.integers(0, 23),
    weekdays=st.sampled_from(["*", "1-5", "0,6", "3"]),
)
def test_cron_next_run_agrees_with_cronsim(
    near: tuple[str, datetime], minute: int, hour: int, weekdays: str
) -> None:
    """Strictly later; the library's first answer that is later (cronsim on the local wall clock); on the
    wall time asked for, or, where that time does not exist, the first moment after the jump."""
    zone, after = near
    cron = f"{minute} {hour} * * {weekdays}"
    got = Recurrence(cron=cron).next_after(after, zone)
    assert got is not None and got > after
    library = next(t for t in CronSim(cron, after.astimezone(ZoneInfo(zone))) if t.astimezone(UTC) > after)
    assert got == library.astimezone(UTC)
    local = got.astimezone(ZoneInfo(zone))
    exists = local.replace(hour=hour, minute=minute)
    if exists.astimezone(UTC).astimezone(ZoneInfo(zone)).replace(tzinfo=None) == exists.replace(tzinfo=None):
        assert (local.hour, local.minute) == (hour, minute)
    else:  # skipped by the spring jump: right after it
        assert (local.hour, local.minute) == (hour + 1, 0)


@settings(max_examples=60, deadline=None)
@given(zone=st.sampled_from(ZONES), minute=st.integers(0, 59), hour=st.integers(0, 23))
def test_a_daily_time_runs_exactly_once_every_day_of_2027(zone: str, minute: int, hour: int) -> None:
    """Every local date of the year has exactly one run: the skipped hour is not lost, the repeated hour
    does not run twice."""
    tz = ZoneInfo(zone)
    start = datetime(2027, 1, 1, tzinfo=tz).astimezone(UTC) - timedelta(seconds=1)
    until = datetime(2028, 1, 1, tzinfo=tz).astimezone(UTC)
    runs = _runs(Recurrence(cron=f"{minute} {hour} * * *"), zone, start, until)
    days = [run.astimezone(tz).date() for run in runs]
    assert len(days) == 365 and len(set(days)) == 365


@settings(max_examples=200, deadline=None)
@given(near=_near_a_change(), every=st.integers(1, 2 * 86400), back=st.integers(0, 10 * 86400))
def test_an_interval_counts_elapsed_time(near: tuple[str, datetime], every: int, back: int) -> None:
    """An interval keeps its rhythm from its anchor in real seconds, whatever the clock does."""
    zone, after = near
    anchor = after - timedelta(seconds=back)
    got = Recurrence(every_seconds=every).next_after(after, zone, anchor=anchor)
    assert got is not None and after < got <= after + timedelta(seconds=every)
    assert (got - anchor).total_seconds() % every == 0


def test_a_moment_runs_once() -> None:
    moment = _utc("Europe/Copenhagen", 2027, 3, 28, 3, 15)
    once = Recurrence(at=moment)
    assert once.next_after(moment - timedelta(seconds=1), "UTC") == moment
    assert once.next_after(moment, "UTC") is None


def test_a_cron_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="not valid"):
        Recurrence(cron="75 2 * * *")


# ---------------------------------------------------------------- the recognizer's recurrences


@pytest.mark.parametrize(
    ("said", "cron"),
    [
        ("every night at 2", "0 2 * * *"),
        ("every night at 2:30", "30 2 * * *"),
        ("nightly at 3", "0 3 * * *"),
        ("every night at 11", "0 23 * * *"),
        ("every night at 12", "0 0 * * *"),
        ("every night", "0 21 * * *"),
        ("every midnight", "0 0 * * *"),
        ("every day at midnight", "0 0 * * *"),
        ("every morning", "0 9 * * *"),
        ("every morning at 7", "0 7 * * *"),
        ("every evening", "0 18 * * *"),
        ("every evening at 7", "0 19 * * *"),
        ("every noon", "0 12 * * *"),
    ],
)
def test_parts_of_the_day_give_the_hours_people_mean(said: str, cron: str) -> None:
    assert parse_recurrence(said.split(), datetime(2027, 1, 1, tzinfo=UTC)) == {"cron": cron}
