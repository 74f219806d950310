"""Tool definitions from raw JSON schemas: tools of outside MCP servers joining the catalog.

Built-in tools derive their schemas from pydantic models; an outside tool only has the JSON schemas its
server announced. ``external_tool`` wraps those in models whose ``model_json_schema`` is that schema and
whose validation runs it, so policy, argument checks and the MCP listing treat both kinds alike.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError

from tools.definition import Risk, ToolDefinition

_ANY_OBJECT: dict[str, Any] = {"type": "object", "additionalProperties": True}


class ExternalInput(BaseModel):
    """Arguments of an outside tool: whatever its JSON schema accepts."""

    model_config = ConfigDict(extra="allow")
    __external_schema__: ClassVar[dict[str, Any]] = _ANY_OBJECT

    @model_validator(mode="before")
    @classmethod
    def _check_schema(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise PydanticCustomError("external_schema", "arguments must be a JSON object")
        validator = Draft202012Validator(cls.__external_schema__)
        problems = [_describe(e) for e in sorted(validator.iter_errors(data), key=lambda e: list(e.path))]
        if problems:
            raise PydanticCustomError("external_schema", "; ".join(problems[:3]))
        return data

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return copy.deepcopy(cls.__external_schema__)


class ExternalOutput(BaseModel):
    """Structured result of an outside tool; ``__external_schema__`` is None when it announced none."""

    model_config = ConfigDict(extra="allow")
    __external_schema__: ClassVar[dict[str, Any] | None] = None

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return copy.deepcopy(cls.__external_schema__ or _ANY_OBJECT)

    def summary(self) -> str:
        return self.model_dump_json()


def external_tool(
    *,
    name: str,
    description: str,
    agent: str,
    input_schema: dict[str, Any],
    output_schema: dict[str, Any] | None,
    risk: Risk,
) -> ToolDefinition:
    """A catalog definition for an outside tool; ``ValueError`` when a schema is not valid JSON schema."""
    for schema in (input_schema, output_schema):
        if schema is not None:
            try:
                Draft202012Validator.check_schema(schema)
            except SchemaError as err:
                raise ValueError(f"tool {name!r} has an invalid JSON schema: {err.message}") from err
    suffix = "".join(part.capitalize() for part in name.split("_"))
    input_model = type(
        f"{suffix}Input",
        (ExternalInput,),
        {"__external_schema__": input_schema or _ANY_OBJECT, "__module__": __name__},
    )
    output_model = type(
        f"{suffix}Output", (ExternalOutput,), {"__external_schema__": output_schema, "__module__": __name__}
    )
    return ToolDefinition(
        name=name,
        description=description,
        agent=agent,
        input_model=input_model,
        output_model=output_model,
        risk=risk,
    )


def declared_output_schema(tool: ToolDefinition) -> dict[str, Any] | None:
    """The output schema to announce over MCP: None for outside tools that announced none."""
    if issubclass(tool.output_model, ExternalOutput) and tool.output_model.__external_schema__ is None:
        return None
    return tool.output_schema()


def _describe(error: Any) -> str:
    where = ".".join(str(p) for p in error.absolute_path)
    return f"{where}: {error.message}" if where else str(error.message)
