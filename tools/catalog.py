"""The catalog: explicit registration, duplicate detection, lookup by name, by agent and by fact."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from tools.definition import ToolDefinition
from tools.errors import DuplicateToolError, UnknownToolError
from tools.facts import EntityKind


class Catalog:
    """A registry of tool definitions keyed by name."""

    def __init__(self, tools: Iterable[ToolDefinition] = ()) -> None:
        self._tools: dict[str, ToolDefinition] = {}
        for tool in tools:
            self.register(tool)

    def register(self, tool: ToolDefinition) -> ToolDefinition:
        """Add a tool; a second tool with the same name is an error."""
        if tool.name in self._tools:
            raise DuplicateToolError(f"tool {tool.name!r} is registered already")
        self._tools[tool.name] = tool
        return tool

    def replace(self, tool: ToolDefinition) -> ToolDefinition:
        """Add or overwrite a tool: outside MCP servers' tools change when their server does."""
        self._tools[tool.name] = tool
        return tool

    def get(self, name: str) -> ToolDefinition:
        """The tool with this name, or ``UnknownToolError``."""
        try:
            return self._tools[name]
        except KeyError as err:
            raise UnknownToolError(f"there is no tool called {name!r}") from err

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[ToolDefinition]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def names(self) -> list[str]:
        """Tool names in registration order."""
        return list(self._tools)

    def agents(self) -> list[str]:
        """Names of the agents that own at least one tool."""
        return sorted({tool.agent for tool in self._tools.values()})

    def by_agent(self, agent: str) -> list[ToolDefinition]:
        """Tools owned by one agent."""
        return [tool for tool in self._tools.values() if tool.agent == agent]

    def approval_decider(self) -> ToolDefinition:
        """The tool that approves or rejects pending approvals, or ``UnknownToolError``."""
        for tool in self._tools.values():
            if tool.decides_approvals:
                return tool
        raise UnknownToolError("there is no tool that decides approvals")

    def creating(self, kind: EntityKind) -> list[ToolDefinition]:
        """Tools that create a new live thing of ``kind`` (a schedule, say) under a name they are given."""
        return [
            tool
            for tool in self._tools.values()
            if tool.entity is not None and tool.entity.kind is kind and tool.entity.creates
        ]

    def embeds_text(self, agents: Iterable[str]) -> bool:
        """Whether any tool of these agents turns text into vectors (so a worker warms the model)."""
        wanted = set(agents)
        return any(tool.embeds for tool in self._tools.values() if tool.agent in wanted)
