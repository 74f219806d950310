"""Free text over its length limit is still the command said: the match carries why it cannot run."""

from __future__ import annotations

import pytest

from intents import Recognizer
from intents.templates import load_templates
from tools import builtin_catalog
from tools.builtin.memory import RememberInput

CATALOG = builtin_catalog()
RECOGNIZER = Recognizer(CATALOG)
LIMIT = RememberInput.model_json_schema()["properties"]["fact"]["maxLength"]


def test_a_fact_over_the_limit_is_a_remember_command_that_says_it_is_too_long() -> None:
    fact = "x" * (LIMIT + 1)
    [match] = RECOGNIZER.recognize("remember that " + fact)
    assert match.tool == "memory_remember" and match.arguments == {"fact": fact}
    assert match.problem == f"That is too long to remember ({LIMIT + 1} characters; the limit is {LIMIT})."
    assert match.to_json()["problem"] == match.problem


def test_at_the_limit_it_runs_and_other_tools_get_the_plain_sentence() -> None:
    [fits] = RECOGNIZER.recognize("remember that " + "x" * LIMIT)
    assert fits.problem is None and "problem" not in fits.to_json()
    [reminder] = RECOGNIZER.recognize("remind me to " + "y" * (LIMIT + 20) + " in ten minutes")
    assert reminder.tool == "reminders_create"
    assert reminder.problem == f"That text is too long ({LIMIT + 20} characters; the limit is {LIMIT})."


def test_a_too_long_sentence_with_an_unknown_placeholder_fails_at_load() -> None:
    templates = load_templates()
    templates["intents"]["memory_remember"]["too_long"] = "Too long: {size}."
    with pytest.raises(ValueError, match="too_long"):
        Recognizer(CATALOG, templates=templates)
