"""Domain records: what repositories return. ORM rows never leave ``storage/``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class Record(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)


class ApprovalRecord(Record):
    id: uuid.UUID
    tool: str
    arguments: dict[str, Any]
    requested_by: str
    channel: str
    thread_id: str | None
    requester_role: str = "viewer"
    requester_alive_until: datetime | None = None
    runner: str | None = None
    status: str
    decided_by: str | None
    reason: str | None
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None

    @property
    def requester_waiting(self) -> bool:
        """Whether the requesting turn still waits for the decision (its liveness mark is fresh)."""
        alive = self.requester_alive_until
        return alive is not None and alive > datetime.now(UTC)


class MemoryRecord(Record):
    id: uuid.UUID
    user_id: str
    kind: str
    subject: str | None
    content: str
    importance: float
    access_count: int
    created_at: datetime
    expires_at: datetime | None
    superseded_by: uuid.UUID | None


class ReminderRecord(Record):
    id: uuid.UUID
    user_id: str
    channel: str
    thread_id: str | None
    text: str
    due_at: datetime
    status: str
    fired_at: datetime | None
    created_at: datetime


class AgentInstanceRecord(Record):
    instance_id: str
    agent: str
    host: str
    pid: int
    status: str
    started_at: datetime
    last_heartbeat_at: datetime


class AgentRecord(Record):
    name: str
    description: str
    tools: list[str]
    instances: list[AgentInstanceRecord] = []
