"""One tool definition: the single source for MCP schemas, LLM tool lists, bus validation and templates."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ValidationError

from tools.errors import InvalidArgumentsError

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class Risk(StrEnum):
    """How much a tool can change: ``dangerous`` needs a person's approval before it runs."""

    READ = "read"
    WRITE = "write"
    DANGEROUS = "dangerous"


@dataclass(frozen=True, slots=True)
class ToolDefinition:
    """A tool: its name, owning agent, typed input and output, and risk."""

    name: str
    description: str
    agent: str
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    risk: Risk = Risk.READ

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"tool name {self.name!r} must be lowercase letters, digits and '_'")
        if not _NAME.match(self.agent):
            raise ValueError(f"agent name {self.agent!r} must be lowercase letters, digits and '_'")

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
