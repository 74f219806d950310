"""``completion/complete``: live names for the arguments of prompts and resource templates.

An argument that names a bot, a schedule, a reminder or a document is registered with the ``NameSource``
its names come from: a read tool of the catalog, run as the caller, so the names offered are exactly those
the caller may see (their own reminders, the schedules they own or, for an admin, all of them) and the
completion request is audited like any read.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mcp import types

from assistant.reads import ToolReadError
from mcp_server.host import Host, read_as_caller
from tools import ToolDefinition
from tools.builtin import bots as bot_tools
from tools.builtin import knowledge as knowledge_tools
from tools.builtin import reminders as reminder_tools
from tools.builtin import schedules as schedule_tools

log = logging.getLogger(__name__)

MAX_VALUES = 100
"""The protocol's limit of values in one completion."""


@dataclass(frozen=True, slots=True)
class NameSource:
    """Where the names an argument can take come from: the listing ``tool`` (run with ``arguments``),
    the list ``items`` in its result, and each item's ``key``."""

    tool: ToolDefinition
    items: str
    key: str
    arguments: Mapping[str, Any] = field(default_factory=dict)

    async def names(self, host: Host) -> list[str]:
        """The names the caller may see, in the tool's order, each once."""
        listed = await read_as_caller(host, self.tool, dict(self.arguments))
        found = (item.get(self.key) for item in listed.get(self.items, []))
        return list(dict.fromkeys(name for name in found if isinstance(name, str) and name))


BOTS = NameSource(bot_tools.LIST, "bots", "name")
SCHEDULES = NameSource(schedule_tools.LIST, "schedules", "name")
REMINDERS = NameSource(reminder_tools.LIST, "reminders", "text")
DOCUMENTS = NameSource(knowledge_tools.LIST, "entries", "title", {"limit": 200})


def matching(names: list[str], typed: str) -> list[str]:
    """The names that start with ``typed`` (case and surrounding spaces ignored), then those that
    contain it elsewhere: what a person typing part of a name expects first."""
    needle = typed.strip().casefold()
    starts = [name for name in names if name.casefold().startswith(needle)]
    inside = [name for name in names if needle in name.casefold() and name not in starts]
    return starts + inside


class Completions:
    """Which prompt and resource-template arguments take live names, registered beside their definitions."""

    def __init__(self) -> None:
        self._sources: dict[tuple[str, str], NameSource] = {}

    def add(self, ref: str, argument: str, source: NameSource) -> None:
        """Complete ``argument`` of the prompt named ``ref`` (or the resource template whose URI template
        is ``ref``) from ``source``."""
        if (ref, argument) in self._sources:
            raise ValueError(f"the argument {argument!r} of {ref!r} has a completion already")
        self._sources[(ref, argument)] = source

    async def complete(
        self,
        host: Host,
        ref: types.PromptReference | types.ResourceTemplateReference,
        argument: types.CompletionArgument,
    ) -> types.Completion:
        """The caller's live names matching what is typed so far; none for an argument (or a prompt or
        template) without live names, or when the listing tool gives no result."""
        key = ref.name if isinstance(ref, types.PromptReference) else ref.uri
        source = self._sources.get((key, argument.name))
        if source is None:
            return types.Completion(values=[], hasMore=False)
        try:
            names = matching(await source.names(host), argument.value)
        except ToolReadError as err:  # e.g. the agent is not running: nothing to offer
            log.info("no completions for %s.%s: %s", key, argument.name, err)
            return types.Completion(values=[], hasMore=False)
        return types.Completion(values=names[:MAX_VALUES], total=len(names), hasMore=len(names) > MAX_VALUES)


__all__ = ["BOTS", "DOCUMENTS", "REMINDERS", "SCHEDULES", "Completions", "NameSource", "matching"]
