"""System tools: the health of the agents, the recent audit trail, and the caller's remembered facts."""

from __future__ import annotations

from datetime import datetime

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
TOOLS = (STATUS, AUDIT_RECENT)
