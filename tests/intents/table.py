"""The shared intent table (``utterances.yaml``), loaded for the tests and the benchmark."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from intents import ConversationContext, LiveLists

TABLE_PATH = Path(__file__).with_name("utterances.yaml")


@dataclass(frozen=True)
class Table:
    now: datetime
    timezone: str
    lists: LiveLists
    cases: list[dict[str, Any]]
    multi: list[dict[str, Any]]
    followups: list[dict[str, Any]]
    none: list[str]

    def utterances(self) -> list[str]:
        """Every utterance of the table, in order."""
        texts = [case["text"] for case in self.cases]
        texts += [case["text"] for case in self.multi]
        texts += [case["text"] for case in self.followups]
        return texts + list(self.none)

    @staticmethod
    def context(case: dict[str, Any]) -> ConversationContext:
        return ConversationContext(**case.get("context", {}))


def load_table(path: Path = TABLE_PATH) -> Table:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return Table(
        now=datetime.fromisoformat(data["now"]),
        timezone=data["timezone"],
        lists=LiveLists(**data["lists"]),
        cases=data["cases"],
        multi=data["multi"],
        followups=data["followups"],
        none=[str(text) for text in data["none"]],
    )
