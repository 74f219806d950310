"""One tool definition: the single source for MCP schemas, LLM tool lists, bus validation and templates,
and for every fact about the tool that other packages need (see ``tools.facts``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from tools.errors import InvalidArgumentsError
from tools.facts import ArgumentFacts, EntityArgument

if TYPE_CHECKING:
    from tools.builtin.base import Table

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class Risk(StrEnum):
    """How much a tool can change: ``dangerous`` needs a person's approval before it runs."""

    READ = "read"
    WRITE = "write"
    DANGEROUS = "dangerous"


@dataclass(frozen=True, slots=True)
class ToolDefinition:
    """A tool: its name, owning agent, typed input and output, risk, and the facts other packages need.

    Facts about single arguments (private, free text, naming a bot or a schedule) are markers in
    the input model's annotations (``tools.facts``), read once here into ``facts``; they stay out of the
    JSON schema. ``decides_approvals``, ``embeds`` and ``private_result`` are facts about the whole tool.
    Nothing outside ``tools/`` names a tool: it asks the definition or the catalog.
    """

    name: str
    description: str
    agent: str
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    risk: Risk = Risk.READ
    decides_approvals: bool = False
    """The tool approves or rejects pending approvals: only roles that may approve may run it."""
    embeds: bool = False
    """Serving the tool turns text into vectors (to store or to search by meaning): it needs the
    embedding model, so a worker serving it loads the model at start."""
    repeatable: bool = False
    """Running the tool again with the same idempotency key acts once (its effect is keyed by the key), so
    a worker that takes over a call whose worker died mid-call may run it again. Other side-effecting tools
    then answer that the call may or may not have happened."""
    private_result: bool = False
    """The result shows what people keep private although no argument is private (the caller's
    remembered facts). A tool with private arguments has a private result anyway: it echoes them."""
    facts: ArgumentFacts = field(init=False, repr=False, compare=False)
    """What the input model's markers say about the arguments."""

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"tool name {self.name!r} must be lowercase letters, digits and '_'")
        if not _NAME.match(self.agent):
            raise ValueError(f"agent name {self.agent!r} must be lowercase letters, digits and '_'")
        object.__setattr__(self, "facts", ArgumentFacts.of(self.input_model))

    @property
    def private(self) -> frozenset[str]:
        """Arguments the audit trail keeps as a hash only."""
        return self.facts.private

    @property
    def free_text(self) -> frozenset[str]:
        """Arguments that are words a person chose freely (a fact, a query, a reminder's text)."""
        return self.facts.free_text

    @property
    def entity(self) -> EntityArgument | None:
        """The argument naming a live bot, schedule, reminder or approval, if the tool has one."""
        return self.facts.entity

    def auditable(self, arguments: Mapping[str, Any], key: bytes) -> dict[str, Any]:
        """``arguments`` as the audit trail keeps them: private ones as their keyed hash under ``key``."""
        return self.facts.auditable(arguments, key)

    @property
    def result_is_private(self) -> bool:
        """Whether the audit trail keeps the result's text only as its length."""
        return self.private_result or bool(self.private)

    def auditable_result(self, text: str) -> str:
        """A result's text as the audit trail keeps it: a private result only as its length."""
        return f"(private: {len(text)} characters)" if self.result_is_private else text

    def input_schema(self) -> dict[str, Any]:
        """JSON schema of the arguments."""
        return self.input_model.model_json_schema()

    def output_schema(self) -> dict[str, Any]:
        """JSON schema of the structured result."""
        return self.output_model.model_json_schema()

    def validate_arguments(self, arguments: dict[str, Any] | None) -> BaseModel:
        """Parse arguments into the input model or raise a readable ``InvalidArgumentsError``."""
        try:
            return self.input_model.model_validate(arguments or {})
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in err.errors()
            )
            raise InvalidArgumentsError(f"Invalid arguments for {self.name}: {problems}") from err

    def validate_output(self, payload: dict[str, Any]) -> BaseModel:
        """Parse a structured result into the output model."""
        return self.output_model.model_validate(payload)

    def result_table(self, structured: dict[str, Any] | None) -> Table | None:
        """A structured result as the small table its output model draws (``ToolOutput.table``), for
        front doors that show one under the reply; None when it draws none."""
        if structured is None:
            return None
        try:
            output = self.validate_output(structured)
        except ValidationError:
            return None
        table = getattr(output, "table", None)
        return table() if callable(table) else None
