"""A new tool is one definition and its sentence templates: parsed, policed and audited without a line
in any other package."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from pathlib import Path
from typing import Annotated

import pytest
from pydantic import BaseModel, Field

from assistant import policy
from intents import ConversationContext, LiveLists, Recognizer, load_templates
from tools import (
    BUILTIN_TOOLS,
    PRIVATE,
    TEMPLATE_DIR,
    Catalog,
    EntityKind,
    Names,
    Risk,
    ToolDefinition,
    ToolInput,
    ToolOutput,
)

NOW = datetime.fromisoformat("2025-06-11T10:00:00+02:00")
LISTS = LiveLists(bots=["backup", "crawler"])


class DiaryWriteInput(ToolInput):
    """Write an entry in the person's diary."""

    entry: Annotated[str, PRIVATE] = Field(min_length=1, description="What to write, in the person's words.")


class BotSnoozeInput(ToolInput):
    """Snooze a bot: it stays up but takes no new work."""

    name: Annotated[str, Names(EntityKind.BOT)] = Field(min_length=1, description="The bot's name.")


class Done(ToolOutput):
    """What was done."""

    text: str = Field(description="One sentence.")

    def summary(self) -> str:
        return self.text


DIARY_WRITE = ToolDefinition(
    name="diary_write",
    description="Write an entry in the person's diary.",
    agent="diary",
    input_model=DiaryWriteInput,
    output_model=Done,
    risk=Risk.WRITE,
)
BOT_SNOOZE = ToolDefinition(
    name="bot_snooze",
    description="Snooze a running bot.",
    agent="bots",
    input_model=BotSnoozeInput,
    output_model=Done,
    risk=Risk.DANGEROUS,
)

TEMPLATES = """
language: en
lists:
  entry: {wildcard: true}
intents:
  diary_write:
    examples: ["write in my diary that the fern got new leaves"]
    data:
      - sentences:
          - "(write|note) in my diary [that] {entry}"
          - "dear diary {entry}"
  bot_snooze:
    examples: ["snooze the backup bot"]
    data:
      - sentences:
          - "(snooze|freeze) <bot>"
          - "(snooze|freeze) {bot_ref:name}"
"""


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog([*BUILTIN_TOOLS, DIARY_WRITE, BOT_SNOOZE])


@pytest.fixture(scope="module")
def recognizer(catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> Recognizer:
    folder: Path = tmp_path_factory.mktemp("diary")
    (folder / "diary.yaml").write_text(TEMPLATES, encoding="utf-8")
    return Recognizer(catalog, templates=load_templates(TEMPLATE_DIR, folder))


def test_the_facts_come_from_the_definition() -> None:
    assert DIARY_WRITE.private == {"entry"} and DIARY_WRITE.free_text == {"entry"}
    assert DIARY_WRITE.entity is None and not DIARY_WRITE.decides_approvals
    assert BOT_SNOOZE.entity is not None
    assert (BOT_SNOOZE.entity.argument, BOT_SNOOZE.entity.kind, BOT_SNOOZE.entity.creates) == (
        "name",
        EntityKind.BOT,
        False,
    )
    assert not BOT_SNOOZE.private and not BOT_SNOOZE.free_text


def test_markers_stay_out_of_the_json_schema() -> None:
    class Plain(ToolInput):
        """The same arguments without markers."""

        entry: str = Field(min_length=1, description="What to write, in the person's words.")

    plain = Plain.model_json_schema()
    assert DIARY_WRITE.input_schema()["properties"] == plain["properties"]


def test_parsed_with_its_templates(recognizer: Recognizer) -> None:
    [match] = recognizer.recognize("Write in my diary that the fern got new leaves", lists=LISTS, now=NOW)
    assert (match.tool, match.arguments) == ("diary_write", {"entry": "the fern got new leaves"})
    [match] = recognizer.recognize("snooze the crawler bot", lists=LISTS, now=NOW)
    assert (match.tool, match.arguments, match.confidence) == ("bot_snooze", {"name": "crawler"}, 1.0)


def test_its_live_name_joins_the_conversation(recognizer: Recognizer) -> None:
    context = ConversationContext()
    for match in recognizer.recognize("snooze the backup bot", lists=LISTS, now=NOW):
        context.observe(match)
    assert (context.bot, context.topic) == ("backup", EntityKind.BOT)
    follow_up = recognizer.recognize("stop it", lists=LISTS, now=NOW, context=context)
    assert [(m.tool, m.arguments) for m in follow_up] == [("bots_stop", {"name": "backup"})]
    [match] = recognizer.recognize("freeze it", lists=LISTS, now=NOW, context=context)
    assert (match.tool, match.arguments) == ("bot_snooze", {"name": "backup"})


def test_a_name_nobody_has_is_a_guess_from_speech(recognizer: Recognizer) -> None:
    [match] = recognizer.recognize_heard("snooze the backap bot", lists=LISTS, now=NOW)
    assert (match.tool, match.arguments, match.source) == ("bot_snooze", {"name": "backup"}, "corrected")


def test_its_free_text_keeps_a_second_command_apart(recognizer: Recognizer) -> None:
    matches = recognizer.recognize("snooze the backup bot and dear diary it was calm", lists=LISTS, now=NOW)
    assert [(m.tool, m.arguments) for m in matches] == [
        ("bot_snooze", {"name": "backup"}),
        ("diary_write", {"entry": "it was calm"}),
    ]


def test_policed_by_its_risk() -> None:
    assert policy.decide(DIARY_WRITE, "viewer").verdict is policy.Verdict.REFUSE
    assert policy.decide(DIARY_WRITE, "operator").verdict is policy.Verdict.RUN
    assert policy.decide(BOT_SNOOZE, "operator").verdict is policy.Verdict.APPROVAL


def test_a_new_approval_decider_is_policed_like_the_builtin_one(catalog: Catalog) -> None:
    class Input(ToolInput):
        """Approve every pending approval at once."""

    approve_all = ToolDefinition(
        "approvals_approve_all", "x", "system", Input, Done, Risk.WRITE, decides_approvals=True
    )
    assert policy.decide(approve_all, "operator").verdict is policy.Verdict.REFUSE
    assert policy.decide(approve_all, "admin").verdict is policy.Verdict.RUN
    assert catalog.approval_decider().name == "approvals_decide"


def test_audited_with_its_private_argument_hashed() -> None:
    key = b"an audit key"
    audited = DIARY_WRITE.auditable({"entry": "I felt tired today"}, key)
    digest = hmac.new(key, b"I felt tired today", hashlib.sha256).hexdigest()
    assert audited == {"entry": "hmac-sha256:" + digest}
    assert BOT_SNOOZE.auditable({"name": "backup"}, key) == {"name": "backup"}


def test_no_facts_for_a_model_without_markers() -> None:
    tool = ToolDefinition("bare_tool", "x", "system", BaseModel, BaseModel)
    assert (tool.private, tool.free_text, tool.entity) == (frozenset(), frozenset(), None)
    assert tool.auditable({"a": 1}, b"an audit key") == {"a": 1}
