"""The LLM fallback's pure half: the catalog as LLM tool specs, and tool calls back into ``IntentMatch``.

No network here: ``assistant.llm`` talks to the model and passes its tool calls in. Arguments are
validated by the same pydantic models the templates and the bus use; a call that fails validation is
reported as a problem the model can be asked to repair.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from intents.models import IntentMatch, Mention
from tools import Catalog
from tools.errors import ToolError

__all__ = ["LLM_CONFIDENCE", "RawToolCall", "ToolChoice", "parse_tool_calls", "tool_specs"]

LLM_CONFIDENCE = 0.6
"""Confidence given to a tool the LLM chose: below a template match, above the acceptance threshold."""


def tool_specs(catalog: Catalog, *, exclude: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Every catalog tool in the OpenAI function-calling format (litellm converts it for other APIs)."""
    skip = set(exclude)
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": f"{tool.description} (risk: {tool.risk.value})",
                "parameters": tool.input_schema(),
            },
        }
        for tool in catalog
        if tool.name not in skip
    ]


@dataclass(frozen=True, slots=True)
class RawToolCall:
    """A tool call as the model sent it: arguments are a JSON string (or already a dict)."""

    name: str
    arguments: str | dict[str, Any]
    id: str = ""


@dataclass(frozen=True)
class ToolChoice:
    """Valid calls as matches, and one sentence per call that could not be used."""

    matches: list[IntentMatch] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """Per call: why it was refused (unknown tool, arguments not JSON, arguments invalid)."""


def _arguments(raw: str | dict[str, Any], name: str) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw or "{}")
    except json.JSONDecodeError as err:
        raise ValueError(f"the arguments for {name} are not valid JSON ({err.msg})") from err
    if not isinstance(value, dict):
        raise ValueError(f"the arguments for {name} must be a JSON object")
    return value


def parse_tool_calls(catalog: Catalog, calls: Sequence[RawToolCall], *, text: str = "") -> ToolChoice:
    """Turn the model's tool calls into validated matches; collect a problem for each bad one."""
    matches: list[IntentMatch] = []
    problems: list[str] = []
    for call in calls:
        if call.name not in catalog:
            problems.append(f"there is no tool called {call.name!r}")
            continue
        tool = catalog.get(call.name)
        try:
            validated = tool.validate_arguments(_arguments(call.arguments, call.name))
        except (ValueError, ToolError) as err:
            problems.append(str(err))
            continue
        arguments = validated.model_dump(mode="json", exclude_none=True)
        matches.append(
            IntentMatch(
                tool=tool.name,
                arguments=arguments,
                confidence=LLM_CONFIDENCE,
                source="llm",
                text=text,
                mention=Mention.of(tool, arguments),
            )
        )
    return ToolChoice(matches=matches, problems=problems)
