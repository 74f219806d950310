"""Domain records: what repositories return. ORM rows never leave ``storage/``."""

from __future__ import annotations

import uuid
from datetime import datetime
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
    status: str
    decided_by: str | None
    reason: str | None
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None


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
