"""Times and numbers as a speech recogniser writes them: each transcript must give the due time it means,
read in the person's time zone (two zones, the same local "now": Wednesday 11 June 2025, 10:00).

Parts of the day, as documented in ``intents.timeparse``: morning 9:00, afternoon 15:00, evening 18:00,
night / tonight 21:00; a bare clock hour 7..11 is morning and 1..6 afternoon; "at 430" is 4:30.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from intents import LiveLists, Recognizer
from tools import Catalog

ZONES = ["Europe/Berlin", "America/New_York"]
LISTS = LiveLists(bots=["backup", "crawler"], reminders=["call mom"])

# transcript -> the local due time it must give ("2025-06-11 16:30" is today at 16:30)
TIMES = [
    ("Remind me at 430 to leave.", "2025-06-11 16:30"),
    ("Remind me at 330 to call the bank.", "2025-06-11 15:30"),
    ("Remind me at 3:30 to call the bank.", "2025-06-11 15:30"),
    ("Remind me at 3.30 to call the bank.", "2025-06-11 15:30"),
    ("Remind me at 3 30 pm to call the bank.", "2025-06-11 15:30"),
    ("Remind me at 3:30 p.m. to call the bank.", "2025-06-11 15:30"),
    ("Remind me at 2.45 p.m. to pick up the kids.", "2025-06-11 14:45"),
    ("Remind me at 7:05 pm to call the plumber.", "2025-06-11 19:05"),
    ("Remind me to stretch at 1130.", "2025-06-11 11:30"),
    ("Remind me at 1045 to join the call.", "2025-06-11 10:45"),
    ("Remind me at 930 tomorrow to call the bank.", "2025-06-12 09:30"),
    ("Remind me at 12:15 to eat.", "2025-06-11 12:15"),
    ("Remind me at 5 to leave.", "2025-06-11 17:00"),
    ("Uh, remind me at 4 o'clock to leave.", "2025-06-11 16:00"),
    ("Remind me at quarter past three to take the cake out.", "2025-06-11 15:15"),
    ("Remind me at half past four to leave.", "2025-06-11 16:30"),
    ("Remind me at quarter to 5 to leave.", "2025-06-11 16:45"),
    ("Remind me at noon to eat.", "2025-06-11 12:00"),
    ("Remind me at midnight to lock the door.", "2025-06-12 00:00"),
    ("Remind me tonight to call dad.", "2025-06-11 21:00"),
    ("Remind me at 9 tonight to take out the trash.", "2025-06-11 21:00"),
    ("Remind me at 11 tonight to go to bed.", "2025-06-11 23:00"),
    ("So remind me at 7 tonight to call dad.", "2025-06-11 19:00"),
    ("Remind me this evening to water the plants.", "2025-06-11 18:00"),
    ("Remind me this afternoon to send the report.", "2025-06-11 15:00"),
    ("Remind me tomorrow morning to buy bread.", "2025-06-12 09:00"),
    ("Remind me tomorrow afternoon to call the plumber.", "2025-06-12 15:00"),
    ("Remind me tomorrow evening at 7 to call mom.", "2025-06-12 19:00"),
    ("Remind me at 8 in the morning to go running.", "2025-06-12 08:00"),
    ("Remind me at 6 p.m. tomorrow to call mom.", "2025-06-12 18:00"),
    ("Remind me on Monday morning to call the bank.", "2025-06-16 09:00"),
    ("Remind me next Friday at 9.30 to submit the report.", "2025-06-13 09:30"),
    ("Remind me the day after tomorrow at noon to water the plants.", "2025-06-13 12:00"),
    ("Remind me on the 3rd of July to renew the passport.", "2025-07-03 09:00"),
    ("Remind me on July 3rd at 2 p.m. to renew the passport.", "2025-07-03 14:00"),
    ("Remind me on the twenty first to pay the rent.", "2025-06-21 09:00"),
    ("Remind me in 20 minutes to check the oven.", "2025-06-11 10:20"),
    ("And 20 minutes, remind me to check the oven.", "2025-06-11 10:20"),
    ("Um, remind me in ten minutes to stretch.", "2025-06-11 10:10"),
    ("Okay so remind me in an hour and a half to take my pills.", "2025-06-11 11:30"),
    ("Remind me in 1 and a half hours to check the laundry.", "2025-06-11 11:30"),
    ("Remind me in a couple of hours to call back.", "2025-06-11 12:00"),
    ("Remind me in a couple of minutes to stir the soup.", "2025-06-11 10:02"),
    ("Remind me in 90 minutes to leave.", "2025-06-11 11:30"),
    ("Remind me in an hour to stretch.", "2025-06-11 11:00"),
    ("Remind me in half an hour about the release.", "2025-06-11 10:30"),
    ("Set a timer for 10 minutes.", "2025-06-11 10:10"),
    ("Set a timer for ten minutes.", "2025-06-11 10:10"),
    ("Set a 5 minute timer.", "2025-06-11 10:05"),
    ("Start a timer for half an hour.", "2025-06-11 10:30"),
]


@pytest.fixture(scope="module", params=ZONES)
def zone(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def zoned(catalog: Catalog, zone: str) -> Recognizer:
    return Recognizer(catalog, timezone=zone)


def test_the_table_is_big_enough() -> None:
    assert len(TIMES) >= 40


@pytest.mark.parametrize(("heard", "due"), TIMES, ids=[heard for heard, _ in TIMES])
@pytest.mark.parametrize("path", ["typed", "heard"])
def test_time_as_transcribed_gives_its_due_time(
    zoned: Recognizer, zone: str, path: str, heard: str, due: str
) -> None:
    tz = ZoneInfo(zone)
    now = datetime(2025, 6, 11, 10, 0, tzinfo=tz)
    recognize = zoned.recognize if path == "typed" else zoned.recognize_heard
    [match] = recognize(heard, lists=LISTS, now=now)
    assert match.tool == "reminders_create"
    got = datetime.fromisoformat(match.arguments["due"])
    assert got.utcoffset() == now.utcoffset()  # in the person's zone
    assert got.astimezone(tz).strftime("%Y-%m-%d %H:%M") == due
    assert match.arguments["text"].strip()
