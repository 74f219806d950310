"""System tools: the health of the agents, the recent audit trail, help (what a person can say), and the
``describe`` convention (what a dangerous call would do, in words, for its approval card)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field

from tools.builtin.base import ToolInput, ToolOutput
from tools.definition import Risk, ToolDefinition

AGENT = "system"


class SystemStatusInput(ToolInput):
    """Ask how the system is: which agents are alive."""


class AuditRecentInput(ToolInput):
    """Read the most recent audit entries: the caller's own, or everyone's for an admin."""

    limit: int = Field(default=20, ge=1, le=500, description="How many entries, newest first (1..500).")


class AgentStatus(ToolOutput):
    """One agent's health."""

    name: str = Field(description="The agent's name, e.g. 'memory'.")
    alive: bool = Field(description="True when a heartbeat arrived recently.")
    instances: int = Field(default=0, ge=0, description="How many replicas are serving.")
    tools: list[str] = Field(default_factory=list, description="The tools it serves.")
    last_heartbeat: datetime | None = Field(default=None, description="When it last sent a heartbeat.")

    def summary(self) -> str:
        state = f"up ({self.instances} running)" if self.alive else "down"
        return f"The {self.name} agent is {state}."


class SystemStatus(ToolOutput):
    """The health of every agent."""

    agents: list[AgentStatus] = Field(default_factory=list, description="The known agents.")

    def summary(self) -> str:
        if not self.agents:
            return "No agents have announced themselves."
        down = [agent.name for agent in self.agents if not agent.alive]
        if not down:
            return f"All {len(self.agents)} agents are up."
        up = len(self.agents) - len(down)
        return f"{up} of {len(self.agents)} agents are up; down: {', '.join(down)}."


class AuditRow(ToolOutput):
    """One audit entry."""

    seq: int = Field(ge=0, description="Position in the append-only trail.")
    ts: datetime = Field(description="When it happened.")
    actor: str = Field(description="Who did it: a user, an agent, or the system.")
    kind: str = Field(description="What kind of step, e.g. 'tool_call' or 'approval'.")
    summary_text: str = Field(alias="summary", description="One line saying what happened.")

    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)

    def summary(self) -> str:
        return f"#{self.seq} {self.actor}: {self.summary_text}"


class AuditLog(ToolOutput):
    """Recent audit entries, newest first."""

    rows: list[AuditRow] = Field(default_factory=list, description="Entries, newest first.")

    def summary(self) -> str:
        if not self.rows:
            return "The audit trail is empty."
        return f"The last {len(self.rows)} audit entries; newest: {self.rows[0].summary()}"


class HelpInput(ToolInput):
    """Ask what one can say: the commands this person may run, grouped by agent."""


class HelpCommand(ToolOutput):
    """One command a person may give, with a sentence that says it."""

    tool: str = Field(description="The tool the sentence runs, e.g. 'memory_remember'.")
    example: str = Field(description="A sentence that runs it, from its templates.")
    description: str = Field(description="What the tool does.")
    risk: str = Field(description="read, write or dangerous (dangerous waits for an approval).")

    def summary(self) -> str:
        note = " *(waits for an approval)*" if self.risk == "dangerous" else ""
        return f"“{self.example}” — {self.description}{note}"


class HelpAgent(ToolOutput):
    """The commands of one agent."""

    agent: str = Field(description="The agent's name, e.g. 'memory'.")
    commands: list[HelpCommand] = Field(default_factory=list, description="Its commands this person may run.")

    def summary(self) -> str:
        return f"**{self.agent}**: " + "; ".join(f"“{c.example}”" for c in self.commands)


class HelpResult(ToolOutput):
    """What the caller can say: one example per command, grouped by the agent that serves it."""

    role: str = Field(description="The role the list was made for (a viewer sees only what it may run).")
    agents: list[HelpAgent] = Field(default_factory=list, description="Agents and their commands.")

    def summary(self) -> str:
        if not self.agents:
            return "There is nothing you may run here; ask an admin for a role."
        count = sum(len(a.commands) for a in self.agents)
        lines = [f"You can ask for {count} things (as {self.role}); one example each, by agent:"]
        for agent in self.agents:
            lines.append(f"\n**{agent.agent}**")
            lines.extend(f"- {command.summary()}" for command in agent.commands)
        lines.append("\nSay it in your own words too; several commands in one sentence work.")
        return "\n".join(lines)


class DescribeInput(ToolInput):
    """Ask an agent what a call of one of its tools would do, in words (for an approval card)."""

    tool: str = Field(min_length=1, max_length=64, description="The tool that would run.")
    arguments: dict[str, Any] = Field(default_factory=dict, description="The arguments it would run with.")


class CallDescription(ToolOutput):
    """What a call would do, in a few words: "delete the memory 'your editor is neovim'"."""

    text: str = Field(description="What will happen, for the person who decides; empty when unknown.")

    def summary(self) -> str:
        return self.text or "No description."


def describe_tool_name(agent: str) -> str:
    """The name of an agent's ``describe`` tool: the Kommandant calls it over the bus (as the person who
    asked) when it creates an approval, and shows the answer on the approval card."""
    return f"{agent}_describe"


def describe_tool(agent: str) -> ToolDefinition:
    """The ``describe`` tool of ``agent`` (a read tool it serves by registering a handler that answers
    ``CallDescription`` for its own tools). Agents that register none keep the card's generic words."""
    return ToolDefinition(
        name=describe_tool_name(agent),
        description=f"What a call of one of the {agent} agent's tools would do, in words.",
        agent=agent,
        input_model=DescribeInput,
        output_model=CallDescription,
        risk=Risk.READ,
    )


STATUS = ToolDefinition(
    name="system_status",
    description="How the system is: which agents are alive and what they serve.",
    agent=AGENT,
    input_model=SystemStatusInput,
    output_model=SystemStatus,
    risk=Risk.READ,
)
AUDIT_RECENT = ToolDefinition(
    name="audit_recent",
    description="The most recent entries of the audit trail: the caller's own (an admin's call: everyone's).",
    agent=AGENT,
    input_model=AuditRecentInput,
    output_model=AuditLog,
    risk=Risk.READ,
)
HELP = ToolDefinition(
    name="help",
    description="What you can say: the commands you may run, grouped by agent, one example sentence each.",
    agent=AGENT,
    input_model=HelpInput,
    output_model=HelpResult,
    risk=Risk.READ,
)
TOOLS = (STATUS, AUDIT_RECENT, HELP)
