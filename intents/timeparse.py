"""Times, dates, durations and recurrences from normalised words, resolved against ``now``.

Pure functions over word sequences (see ``intents.normalize``): numbers are digits already.
Conventions, where speech is ambiguous:
- a clock hour without am/pm means 7..11 in the morning and 1..6 in the afternoon ("at five" = 17:00);
  with no day named, the first such time still ahead today wins, else the other half of the day,
  else tomorrow;
- a day without a time means 9:00 ("tomorrow" = tomorrow 9:00); a part of the day without a time means
  morning 9:00, afternoon 15:00, evening 18:00, night 21:00 ("tonight", "this evening", "tomorrow
  morning"); a bare clock hour said with a part of the day takes its half ("at 7 tonight" = 19:00);
- clocks as speech recognisers write them: "3:30", "3.30" (normalised), "3 30 pm", and "430" / "1130"
  after "at" or before am/pm;
- "friday", "this friday" and "next friday" all mean the first Friday after today
  ("friday"/"this friday" mean today when today is Friday and the time is still ahead);
- "every day" without a time is an interval of one day; with a time it is a cron.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

__all__ = [
    "Clock",
    "moment_after",
    "parse_clock",
    "parse_duration",
    "parse_moment",
    "parse_recurrence",
    "split_moment",
    "split_recurrence",
]

Words = Sequence[str]

_UNIT_SECONDS = {
    "second": 1, "seconds": 1, "sec": 1, "secs": 1,
    "minute": 60, "minutes": 60, "min": 60, "mins": 60,
    "hour": 3600, "hours": 3600, "hr": 3600, "hrs": 3600,
    "day": 86400, "days": 86400, "week": 604800, "weeks": 604800,
}  # fmt: skip
_WEEKDAYS = {
    "monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4, "saturday": 5, "sunday": 6,
    "mon": 0, "tue": 1, "tues": 1, "wed": 2, "thu": 3, "thurs": 3, "fri": 4, "sat": 5, "sun": 6,
}  # fmt: skip
_WEEKDAYS_PLURAL = {name + "s": day for name, day in _WEEKDAYS.items() if len(name) > 3}
_MONTHS = {
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7, "august": 8,
    "september": 9, "october": 10, "november": 11, "december": 12, "jan": 1, "feb": 2, "mar": 3,
    "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9, "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip
# Part of the day: default hour, and whether a bare clock hour in it is afternoon.
_PARTS = {"morning": (9, False), "afternoon": (15, True), "evening": (18, True), "night": (21, True)}
_DEFAULT_HOUR = 9
_MAX_WORDS = 12


@dataclass(frozen=True, slots=True)
class Clock:
    """A time of day as said: ``explicit`` is False when am/pm was left out ("at five")."""

    hour: int
    minute: int = 0
    explicit: bool = True

    def resolve(self, afternoon: bool | None = None) -> time:
        """The time of day, choosing am/pm by the conventions above (or ``afternoon`` when known)."""
        hour = self.hour
        if not self.explicit and 1 <= hour <= 11:
            pm = afternoon if afternoon is not None else hour <= 6
            hour = hour + 12 if pm else hour
        return time(hour % 24, self.minute)


class _Parser:
    """A tiny backtracking parser over words; each rule returns a value and the next position."""

    def __init__(self, words: Words) -> None:
        self.words = list(words)

    def at(self, pos: int, *options: str) -> bool:
        return pos < len(self.words) and self.words[pos] in options

    def number(self, pos: int, low: int = 0, high: int = 10**6) -> int | None:
        if pos < len(self.words) and self.words[pos].isdigit() and len(self.words[pos]) <= 7:
            value = int(self.words[pos])
            return value if low <= value <= high else None
        return None

    def skip(self, pos: int, *options: str) -> int:
        return pos + 1 if self.at(pos, *options) else pos


# ---------------------------------------------------------------- durations


def _duration(p: _Parser, pos: int) -> tuple[timedelta, int] | None:
    """'an hour', '10 minutes', 'an hour and a half', 'half an hour', '1 hour 30 minutes'."""
    total = 0.0
    first = True
    while True:
        start = pos
        if not first:
            pos = p.skip(pos, "and")
        part = _duration_part(p, pos)
        if part is None:
            if first:
                return None
            return timedelta(seconds=total), start
        seconds, pos = part
        total += seconds
        first = False
        if p.at(pos, "and") and p.at(pos + 1, "a") and p.at(pos + 2, "half"):
            total += seconds / 2 if seconds in (60, 3600, 86400, 604800) else 0
            pos += 3


def _duration_part(p: _Parser, pos: int) -> tuple[float, int] | None:
    if p.at(pos, "half") and p.at(pos + 1, "an", "a") and p.at(pos + 2, "hour", "minute", "day"):
        return _UNIT_SECONDS[p.words[pos + 2]] / 2, pos + 3
    if p.at(pos, "a", "an") and p.at(pos + 1, "quarter") and p.at(pos + 2, "hour"):
        return 900, pos + 3
    if p.at(pos, "quarter") and p.at(pos + 1, "of") and p.at(pos + 2, "an") and p.at(pos + 3, "hour"):
        return 900, pos + 4
    if p.at(pos, "a") and p.at(pos + 1, "couple") and p.at(pos + 2, "of"):
        count, pos = 2.0, pos + 3
    elif p.at(pos, "couple") and p.at(pos + 1, "of"):
        count, pos = 2.0, pos + 2
    elif p.at(pos, "a", "an", "one"):
        count, pos = 1.0, pos + 1
    elif (value := p.number(pos, 1, 100_000)) is not None:
        count, pos = float(value), pos + 1
        if p.at(pos, "and") and p.at(pos + 1, "a") and p.at(pos + 2, "half"):
            count, pos = count + 0.5, pos + 3
    else:
        return None
    if pos < len(p.words) and p.words[pos] in _UNIT_SECONDS:
        return count * _UNIT_SECONDS[p.words[pos]], pos + 1
    return None


def parse_duration(words: Words) -> timedelta | None:
    """A duration that uses all of ``words`` ("an hour and a half", "10 minutes"), or None."""
    if not words or len(words) > _MAX_WORDS:
        return None
    p = _Parser(words)
    result = _duration(p, 0)
    if result is None or result[1] != len(words) or result[0] <= timedelta(0):
        return None
    return result[0]


# ---------------------------------------------------------------- clock times


def _clock(p: _Parser, pos: int) -> tuple[Clock, int] | None:
    """'5', '5 pm', '9:30', '9 30 am', 'noon', 'midnight', 'half past 9', 'quarter to 5', '10 past 9'."""
    if p.at(pos, "noon", "midday"):
        return Clock(12, 0), pos + 1
    if p.at(pos, "midnight"):
        return Clock(0, 0), pos + 1
    relative = _relative_clock(p, pos)
    if relative is not None:
        hour, minute, pos = relative
    else:
        parsed = _numeric_clock(p, pos)
        if parsed is None:
            return None
        hour, minute, pos = parsed
    if p.at(pos, "am", "pm"):
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if p.words[pos] == "pm" else 0)
        return Clock(hour, minute), pos + 1
    return Clock(hour, minute, explicit=not 1 <= hour <= 11), pos


def _numeric_clock(p: _Parser, pos: int) -> tuple[int, int, int] | None:
    if pos >= len(p.words):
        return None
    word = p.words[pos]
    if ":" in word:
        hour_text, _, minute_text = word.partition(":")
        if hour_text.isdigit() and minute_text.isdigit() and len(minute_text) == 2:
            hour, minute = int(hour_text), int(minute_text)
            if hour <= 23 and minute <= 59:
                return hour, minute, pos + 1
        return None
    compact = _compact_clock(p, pos)
    if compact is not None:
        return compact
    found = p.number(pos, 0, 24)
    if found is None:
        return None
    hour = 0 if found == 24 else found
    pos += 1
    if p.at(pos, "0") and (oh_minute := p.number(pos + 1, 1, 9)) is not None:  # "nine oh five"
        return hour, oh_minute, pos + 2
    spoken_minute = p.number(pos, 0, 59)
    if spoken_minute is not None and len(p.words[pos]) == 2:
        return hour, spoken_minute, pos + 1
    return hour, 0, pos


def _compact_clock(p: _Parser, pos: int) -> tuple[int, int, int] | None:
    """'430', '1130' as speech recognisers write "four thirty": a clock only after 'at'/'by'/'around'
    or before am/pm (elsewhere it is a number)."""
    word = p.words[pos]
    if not (word.isdigit() and len(word) in (3, 4)):
        return None
    after_at = pos > 0 and p.at(pos - 1, "at", "by", "around", "about", "till", "until")
    if not (after_at or p.at(pos + 1, "am", "pm")):
        return None
    hour, minute = divmod(int(word), 100)
    return (hour, minute, pos + 1) if hour <= 23 and minute <= 59 else None


def _relative_clock(p: _Parser, pos: int) -> tuple[int, int, int] | None:
    if p.at(pos, "half", "quarter") or p.number(pos, 1, 59) is not None:
        if p.at(pos, "half"):
            minutes = 30
        elif p.at(pos, "quarter"):
            minutes = 15
        else:
            minutes = int(p.words[pos])
        nxt = pos + 1
        nxt = p.skip(nxt, "minutes", "minute")
        if p.at(nxt, "past", "after", "to", "till", "before"):
            direction = p.words[nxt]
            hour = p.number(nxt + 1, 0, 23)
            if hour is None:
                if p.at(nxt + 1, "noon"):
                    hour = 12
                elif p.at(nxt + 1, "midnight"):
                    hour = 0
                else:
                    return None
            if direction in ("past", "after"):
                return hour, minutes, nxt + 2
            if minutes == 30:
                return None
            return (hour - 1) % 24, 60 - minutes, nxt + 2
    return None


def parse_clock(words: Words) -> Clock | None:
    """A clock time that uses all of ``words`` ("9:30", "quarter to 5", "5 pm"), or None."""
    p = _Parser(words)
    result = _clock(p, 0)
    return result[0] if result and result[1] == len(words) else None


# ---------------------------------------------------------------- days


@dataclass(frozen=True, slots=True)
class _Day:
    """A day as said: a date, or a weekday (resolved with the time), plus an optional part of the day."""

    day: date | None = None
    weekday: int | None = None
    part: str | None = None


def _day(p: _Parser, pos: int, today: date) -> tuple[_Day, int] | None:
    pos = p.skip(pos, "on")
    if p.at(pos, "today"):
        return _Day(day=today), pos + 1
    if p.at(pos, "tonight"):
        return _Day(day=today, part="night"), pos + 1
    if p.at(pos, "tomorrow", "tmrw", "tmr"):
        return _Day(day=today + timedelta(days=1)), pos + 1
    after = pos + 1 if p.at(pos, "the") else pos
    if p.at(after, "day") and p.at(after + 1, "after") and p.at(after + 2, "tomorrow"):
        return _Day(day=today + timedelta(days=2)), after + 3
    if p.at(pos, "this") and p.at(pos + 1, *_PARTS):
        return _Day(day=today, part=p.words[pos + 1]), pos + 2
    qualifier = pos
    if p.at(pos, "next", "this", "coming") or (p.at(pos, "the") and p.at(pos + 1, "coming")):
        qualifier = pos + (2 if p.at(pos, "the") else 1)
    if p.at(qualifier, *_WEEKDAYS):
        return _Day(weekday=_WEEKDAYS[p.words[qualifier]]), qualifier + 1
    if qualifier != pos:
        return None
    if p.at(pos, "in") and (count := p.number(pos + 1, 1, 3650)) is not None and p.at(pos + 2, "days", "day"):
        return _Day(day=today + timedelta(days=count)), pos + 3
    return _calendar_date(p, pos, today)


def _calendar_date(p: _Parser, pos: int, today: date) -> tuple[_Day, int] | None:
    """'december 3', 'december 3 2026', '3 december', 'the 3 of december', 'the 3', '2026-12-03'."""
    month = day_number = None
    year: int | None = None
    if pos < len(p.words) and len(p.words[pos]) == 10 and p.words[pos][4:5] == "-":
        try:
            return _Day(day=date.fromisoformat(p.words[pos])), pos + 1
        except ValueError:
            return None
    if p.at(pos, *_MONTHS):
        month = _MONTHS[p.words[pos]]
        pos = p.skip(pos + 1, "the")
        day_number = p.number(pos, 1, 31)
        if day_number is None:
            return None
        pos += 1
    else:
        start = p.skip(pos, "the")
        day_number = p.number(start, 1, 31)
        if day_number is None:
            return None
        pos = p.skip(start + 1, "of")
        if p.at(pos, *_MONTHS):
            month = _MONTHS[p.words[pos]]
            pos += 1
        elif start != pos - 1 or not p.at(start - 1, "the"):
            return None
    if (value := p.number(pos, 2000, 2200)) is not None:
        year, pos = value, pos + 1
    resolved = _resolve_date(today, year, month, day_number)
    return (resolved, pos) if resolved.day is not None else None


def _resolve_date(today: date, year: int | None, month: int | None, day_number: int) -> _Day:
    candidates = []
    for offset in range(0, 14):
        if month is None:
            y, m = divmod(today.month - 1 + offset, 12)
            candidate_year, candidate_month = today.year + y, m + 1
        else:
            candidate_year, candidate_month = (year or today.year) + offset, month
            if year is not None and offset:
                break
        try:
            candidate = date(candidate_year, candidate_month, day_number)
        except ValueError:
            continue
        candidates.append(candidate)
        if candidate >= today or year is not None:
            break
    return _Day(day=candidates[-1] if candidates else None)


# ---------------------------------------------------------------- moments


def _time_phrase(p: _Parser, pos: int) -> tuple[Clock | None, str | None, int] | None:
    """'at 5 pm', '5', 'at noon', 'in the morning', '9 in the evening', 'tonight'."""
    start = p.skip(pos, "at", "by", "around", "about")
    clock_result = _clock(p, start)
    part = None
    if clock_result is not None:
        clock, pos = clock_result
    else:
        clock = None
        pos = start
    nxt = _part_of_day(p, pos)
    if nxt is not None:
        part, pos = nxt
        if clock is None and p.at(pos, "at", "around", "about"):  # "evening at 7"
            later = _clock(p, pos + 1)
            if later is not None:
                clock, pos = later
    if clock is None and part is None:
        return None
    return clock, part, pos


def _part_of_day(p: _Parser, pos: int) -> tuple[str, int] | None:
    if p.at(pos, "in") and p.at(pos + 1, "the") and p.at(pos + 2, "morning", "afternoon", "evening"):
        return p.words[pos + 2], pos + 3
    if p.at(pos, "at") and p.at(pos + 1, "night"):
        return "night", pos + 2
    if p.at(pos, "tonight"):
        return "night", pos + 1
    if p.at(pos, "this") and p.at(pos + 1, *_PARTS):
        return p.words[pos + 1], pos + 2
    if p.at(pos, *_PARTS):
        return p.words[pos], pos + 1
    return None


def _moment(p: _Parser, now: datetime) -> datetime | None:
    n = len(p.words)
    relative = _relative(p, 0, now)
    if relative is not None and relative[1] == n:
        return relative[0]
    today = now.date()
    # day [time]  |  time [day]  |  time
    day = _day(p, 0, today)
    if day is not None:
        found, pos = day
        if pos == n:
            return _combine(now, found, None, None)
        phrase = _time_phrase(p, pos)
        if phrase is not None and phrase[2] == n:
            return _combine(now, found, phrase[0], phrase[1])
    phrase = _time_phrase(p, 0)
    if phrase is not None:
        clock, part, pos = phrase
        if pos == n:
            if part == "night" and clock is None and p.at(0, "tonight"):
                return _combine(now, _Day(day=today), None, "night")
            return _combine(now, _Day(part=part) if part else None, clock, part)
        day = _day(p, pos, today)
        if day is not None and day[1] == n:
            found = day[0]
            return _combine(now, found, clock, part or found.part)
    return None


def _relative(p: _Parser, pos: int, now: datetime) -> tuple[datetime, int] | None:
    """'in 10 minutes', '10 minutes from now', 'in an hour'."""
    if p.at(pos, "in", "within", "after"):
        result = _duration(p, pos + 1)
        if result is None:
            return None
        delta, end = result
        end = end + 2 if p.at(end, "from") and p.at(end + 1, "now") else end
    else:
        result = _duration(p, pos)
        if result is None or not (p.at(result[1], "from") and p.at(result[1] + 1, "now")):
            return None
        delta, end = result[0], result[1] + 2
    if delta <= timedelta(0) or delta > timedelta(days=3660):
        return None
    return moment_after(now, delta), end


def moment_after(now: datetime, delta: timedelta) -> datetime:
    """The moment ``delta`` after the aware ``now``, in now's zone (elapsed time: DST changes count)."""
    return (now.astimezone(UTC) + delta).astimezone(now.tzinfo).replace(microsecond=0)


def _combine(now: datetime, day: _Day | None, clock: Clock | None, part: str | None) -> datetime | None:
    tz = now.tzinfo
    part = part or (day.part if day else None)
    afternoon = _PARTS[part][1] if part else None
    if clock is None:
        moment = time(_PARTS[part][0] if part else _DEFAULT_HOUR, 0)
        candidates = [moment]
    elif clock.explicit or afternoon is not None or (day is not None and _names_a_day(day)):
        candidates = [clock.resolve(afternoon)]
    else:
        first = clock.resolve()
        other = time((first.hour + 12) % 24, first.minute)
        candidates = [first, other]
    if day is not None and day.day is not None:
        return datetime.combine(day.day, candidates[0], tzinfo=tz)
    if day is not None and day.weekday is not None:
        ahead = (day.weekday - now.weekday()) % 7
        target = now.date() + timedelta(days=ahead)
        on_day = datetime.combine(target, candidates[0], tzinfo=tz)
        if on_day <= now:
            on_day = datetime.combine(target + timedelta(days=7), candidates[0], tzinfo=tz)
        return on_day
    for candidate in candidates:
        today = datetime.combine(now.date(), candidate, tzinfo=tz)
        if today > now:
            return today
    return datetime.combine(now.date() + timedelta(days=1), candidates[0], tzinfo=tz)


def _names_a_day(day: _Day) -> bool:
    return day.day is not None or day.weekday is not None


def parse_moment(words: Words, now: datetime) -> datetime | None:
    """A moment that uses all of ``words``, resolved against the aware ``now``, or None.

    "in ten minutes", "at 5 pm tomorrow", "next friday at 9:30", "tomorrow morning",
    "on december 3 at noon", "tonight", "half past 9".
    """
    if not words or len(words) > _MAX_WORDS or now.tzinfo is None:
        return None
    return _moment(_Parser(words), now)


def split_moment(words: Words, now: datetime) -> tuple[int, int, datetime] | None:
    """Find a moment at the end (preferred) or the start of ``words``; return (start, end, moment).

    The longest such span wins and at least one word must remain beside it.
    """
    return _split_moment(tuple(words), now)


@lru_cache(maxsize=512)
def _split_moment(words: tuple[str, ...], now: datetime) -> tuple[int, int, datetime] | None:
    return _split(words, lambda part: parse_moment(part, now))


# ---------------------------------------------------------------- recurrences


def _weekday_set(p: _Parser, pos: int) -> tuple[str, int] | None:
    """'monday', 'mondays', 'monday and friday', 'weekday', 'weekdays', 'weekend'."""
    if p.at(pos, "weekday", "weekdays", "workday", "workdays", "working"):
        pos = pos + 2 if p.at(pos, "working") and p.at(pos + 1, "day", "days") else pos + 1
        return "1-5", pos
    if p.at(pos, "weekend", "weekends"):
        return "0,6", pos + 1
    days: list[int] = []
    while pos < len(p.words):
        word = p.words[pos]
        day = _WEEKDAYS.get(word, _WEEKDAYS_PLURAL.get(word))
        if day is None:
            break
        days.append((day + 1) % 7)
        pos += 1
        if (
            p.at(pos, "and")
            and pos + 1 < len(p.words)
            and (p.words[pos + 1] in _WEEKDAYS or p.words[pos + 1] in _WEEKDAYS_PLURAL)
        ):
            pos += 1
    if not days:
        return None
    return ",".join(str(day) for day in sorted(set(days))), pos


def _cron(clock: Clock | None, part: str | None, day_of_month: str = "*", weekdays: str = "*") -> str:
    afternoon = _PARTS[part][1] if part else None
    moment = clock.resolve(afternoon) if clock else time(_PARTS[part][0] if part else _DEFAULT_HOUR, 0)
    if part == "night" and clock is not None:
        moment = _night_time(clock, moment)
    return f"{moment.minute} {moment.hour} {day_of_month} * {weekdays}"


def _night_time(clock: Clock, resolved: time) -> time:
    """At night a bare 12 is midnight and 1..5 are the small hours: "every night at 2" runs at 2:00,
    "every night at 11" at 23:00."""
    if clock.hour == 12 and clock.minute == resolved.minute and resolved.hour == 12:
        return time(0, clock.minute)
    if not clock.explicit and 1 <= clock.hour <= 5:
        return time(clock.hour, clock.minute)
    return resolved


def _optional_time(p: _Parser, pos: int) -> tuple[Clock | None, str | None, int]:
    phrase = _time_phrase(p, pos)
    if phrase is None:
        return None, None, pos
    return phrase


def _every(p: _Parser, pos: int) -> tuple[dict[str, Any], int] | None:
    """What follows 'every' / 'each'."""
    # every 15 minutes / every hour / every half hour / every 2 days [at 9]
    if p.at(pos, "half") and p.at(pos + 1, "hour"):
        return {"every_seconds": 1800}, pos + 2
    if p.at(pos, "half") and p.at(pos + 1, "an") and p.at(pos + 2, "hour"):
        return {"every_seconds": 1800}, pos + 3
    count = p.number(pos, 1, 100_000)
    unit_pos = pos + 1 if count is not None else pos
    if p.at(unit_pos, "other"):
        count, unit_pos = 2, unit_pos + 1
    if unit_pos < len(p.words) and p.words[unit_pos] in _UNIT_SECONDS:
        unit = p.words[unit_pos]
        seconds = (count or 1) * _UNIT_SECONDS[unit]
        end = unit_pos + 1
        if _UNIT_SECONDS[unit] >= 86400:
            clock, part, after = _optional_time(p, end)
            if clock is not None or part is not None:
                if unit.startswith("week"):
                    return None
                step = f"*/{count}" if count and count > 1 else "*"
                return {"cron": _cron(clock, part, day_of_month=step)}, after
        return {"every_seconds": seconds}, end
    # every midnight / every noon
    if p.at(pos, "midnight", "noon", "midday"):
        clock_at = _clock(p, pos)
        if clock_at is not None:
            return {"cron": _cron(clock_at[0], None)}, clock_at[1]
    # every morning / evening / night
    if p.at(pos, *_PARTS):
        part = p.words[pos]
        clock, _, after = _optional_time(p, pos + 1)
        return {"cron": _cron(clock, part)}, after
    # every monday [and friday] [at 9] / every weekday at 8:30
    weekdays = _weekday_set(p, pos)
    if weekdays is not None:
        days, after = weekdays
        clock, part, after = _optional_time(p, after)
        return {"cron": _cron(clock, part, weekdays=days)}, after
    # every month on the 1 [at 9]
    if p.at(pos, "month"):
        nxt = p.skip(p.skip(pos + 1, "on"), "the")
        day_number = p.number(nxt, 1, 31)
        if day_number is None:
            return None
        clock, part, after = _optional_time(p, nxt + 1)
        return {"cron": _cron(clock, part, day_of_month=str(day_number))}, after
    return None


def _recurrence(p: _Parser, pos: int) -> tuple[dict[str, Any], int] | None:
    if p.at(pos, "every", "each"):
        return _every(p, pos + 1)
    if p.at(pos, "hourly"):
        return {"every_seconds": 3600}, pos + 1
    if p.at(pos, "daily", "nightly"):
        clock, part, after = _optional_time(p, pos + 1)
        if p.words[pos] == "nightly":
            part = part or "night"
        if clock is None and part is None:
            return {"every_seconds": 86400}, after
        return {"cron": _cron(clock, part)}, after
    if p.at(pos, "weekly"):
        return {"every_seconds": 604800}, pos + 1
    if (
        p.at(pos, "on")
        and pos + 1 < len(p.words)
        and p.words[pos + 1] in ("weekdays", "weekends", *_WEEKDAYS_PLURAL)
    ):
        days, after = _weekday_set(p, pos + 1) or ("*", pos + 1)
        clock, part, after = _optional_time(p, after)
        return {"cron": _cron(clock, part, weekdays=days)}, after
    # at 9 every day / at 7 am every monday
    phrase = _time_phrase(p, pos)
    if phrase is not None and p.at(phrase[2], "every", "each"):
        clock, part, after = phrase
        rest = _every(p, after + 1)
        if rest is None or ("cron" not in rest[0] and not p.at(after + 1, "day")):
            return None
        if "cron" in rest[0]:
            fields = rest[0]["cron"].split()
            fields[0], fields[1] = _cron(clock, part).split()[:2]
            return {"cron": " ".join(fields)}, rest[1]
        return {"cron": _cron(clock, part)}, rest[1]
    return None


def parse_recurrence(words: Words, now: datetime) -> dict[str, Any] | None:
    """A recurrence that uses all of ``words``, as a ``Recurrence`` dict, or None.

    "every monday at 9" -> {"cron": "0 9 * * 1"}, "every 15 minutes" -> {"every_seconds": 900},
    "every weekday at 8:30" -> {"cron": "30 8 * * 1-5"}; a single moment ("tomorrow at 5")
    -> {"at": <aware datetime>}.
    """
    if not words or len(words) > _MAX_WORDS:
        return None
    p = _Parser(words)
    result = _recurrence(p, 0)
    if result is not None and result[1] == len(words):
        return result[0]
    moment = parse_moment(words, now)
    return {"at": moment} if moment is not None else None


def split_recurrence(words: Words, now: datetime) -> tuple[int, int, dict[str, Any]] | None:
    """Find a recurrence at the end (preferred) or the start of ``words``; return (start, end, value)."""
    found = _split_recurrence(tuple(words), now)
    return (found[0], found[1], dict(found[2])) if found else None


@lru_cache(maxsize=512)
def _split_recurrence(words: tuple[str, ...], now: datetime) -> tuple[int, int, dict[str, Any]] | None:
    return _split(words, lambda part: parse_recurrence(part, now))


def _split(words: Words, parse: Callable[[Words], Any]) -> tuple[int, int, Any] | None:
    n = len(words)
    for start in range(max(1, n - _MAX_WORDS), n):
        value = parse(words[start:])
        if value is not None:
            return start, n, value
    for end in range(min(n - 1, _MAX_WORDS), 0, -1):
        value = parse(words[:end])
        if value is not None:
            return 0, end, value
    return None
