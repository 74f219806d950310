"""SQLAlchemy ORM tables. Rows never leave ``storage/``: repositories map them to pydantic models."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    Boolean,
    Computed,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy import (
    text as sql_text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

EMBEDDING_DIM = 384
"""Dimension of the default embedding model (all-MiniLM-L6-v2); ``reembed`` changes it."""


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSONB, list[Any]: JSONB}


def _uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)


def _created() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class TaskContext(Base):
    """One conversation task: what a user asked, on which channel and thread."""

    __tablename__ = "task_contexts"
    id: Mapped[uuid.UUID] = _uuid_pk()
    user_id: Mapped[str] = mapped_column(String(200), index=True)
    channel: Mapped[str] = mapped_column(String(50))
    thread_id: Mapped[str | None] = mapped_column(String(200), index=True)
    request: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="running")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class WorkflowStep(Base):
    """One step of a task: an intent, a tool call, an approval wait."""

    __tablename__ = "workflow_steps"
    id: Mapped[uuid.UUID] = _uuid_pk()
    task_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("task_contexts.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(30))
    tool: Mapped[str | None] = mapped_column(String(100))
    agent: Mapped[str | None] = mapped_column(String(100))
    arguments: Mapped[dict[str, Any]] = mapped_column(default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = _created()
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (UniqueConstraint("task_id", "seq"),)


class Memory(Base):
    """Agent memory: episodic turns, semantic facts, procedural know-how."""

    __tablename__ = "memories"
    id: Mapped[uuid.UUID] = _uuid_pk()
    user_id: Mapped[str] = mapped_column(String(200), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # episodic | semantic | procedural
    subject: Mapped[str | None] = mapped_column(String(500))
    content: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    importance: Mapped[float] = mapped_column(Float, default=0.5)
    access_count: Mapped[int] = mapped_column(Integer, default=0)
    last_accessed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    superseded_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("memories.id", ondelete="SET NULL"))
    forgotten_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    embedding: Mapped[list[float] | None] = mapped_column(Vector(EMBEDDING_DIM))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    call_key: Mapped[str | None] = mapped_column(String(200))
    """The idempotency key of the call that stored the fact: running that call again finds it."""
    created_at: Mapped[datetime] = _created()
    tsv = mapped_column(TSVECTOR, Computed("to_tsvector('english', content)", persisted=True))
    __table_args__ = (
        Index("ix_memories_user_kind_subject", "user_id", "kind", "subject"),
        Index("ux_memories_call_key", "call_key", unique=True),
        Index("ix_memories_tsv", "tsv", postgresql_using="gin"),
        Index(
            "ix_memories_embedding",
            "embedding",
            postgresql_using="hnsw",
            postgresql_with={"m": 16, "ef_construction": 64},
            postgresql_ops={"embedding": "vector_cosine_ops"},
        ),
    )


class KnowledgeEntry(Base):
    """A document in the knowledge base."""

    __tablename__ = "knowledge_entries"
    id: Mapped[uuid.UUID] = _uuid_pk()
    title: Mapped[str] = mapped_column(String(500))
    source: Mapped[str] = mapped_column(String(2000))
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    mime_type: Mapped[str | None] = mapped_column(String(100))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = _created()


class KnowledgeChunk(Base):
    """A passage of a knowledge entry, with its embedding and full-text vector."""

    __tablename__ = "knowledge_chunks"
    id: Mapped[uuid.UUID] = _uuid_pk()
    entry_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("knowledge_entries.id", ondelete="CASCADE"), index=True
    )
    seq: Mapped[int] = mapped_column(Integer)
    content: Mapped[str] = mapped_column(Text)
    embedding: Mapped[list[float] | None] = mapped_column(Vector(EMBEDDING_DIM))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)  # page, section
    tsv = mapped_column(TSVECTOR, Computed("to_tsvector('english', content)", persisted=True))
    __table_args__ = (
        UniqueConstraint("entry_id", "seq"),
        Index("ix_knowledge_chunks_tsv", "tsv", postgresql_using="gin"),
        Index(
            "ix_knowledge_chunks_embedding",
            "embedding",
            postgresql_using="hnsw",
            postgresql_with={"m": 16, "ef_construction": 64},
            postgresql_ops={"embedding": "vector_cosine_ops"},
        ),
    )


class AuditRow(Base):
    """Append-only audit trail; each row hashes its content and its predecessor's hash."""

    __tablename__ = "audit_log"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    actor: Mapped[str] = mapped_column(String(200))
    owner: Mapped[str | None] = mapped_column(String(200))
    """Whose row it is (who may read it besides admins); NULL means the actor's."""
    channel: Mapped[str | None] = mapped_column(String(50))
    thread_id: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(50), index=True)
    tool: Mapped[str | None] = mapped_column(String(100))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)

    __table_args__ = (Index("ix_audit_log_owner_seq", "owner", "seq"),)


class AuditHead(Base):
    """The newest audit row's sequence and hash, so deleting the tail shows too."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, default=1)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class Approval(Base):
    """A dangerous tool call waiting for, or decided by, a person."""

    __tablename__ = "approvals"
    id: Mapped[uuid.UUID] = _uuid_pk()
    tool: Mapped[str] = mapped_column(String(100))
    arguments: Mapped[dict[str, Any]] = mapped_column(default=dict)
    requested_by: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(50))
    thread_id: Mapped[str | None] = mapped_column(String(200))
    requester_role: Mapped[str] = mapped_column(String(20), default="viewer", server_default="viewer")
    """The requester's role when they asked: a call run after they left runs with it."""
    requester_alive_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """Renewed while the requesting turn waits; NULL once it stopped waiting (disconnected, cancelled)."""
    runner: Mapped[str | None] = mapped_column(String(20))
    """Who ran the approved call, claimed once: 'requester' (the waiting turn) or 'detached'."""
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Agent(Base):
    """A kind of agent and the tools it serves."""

    __tablename__ = "agents"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")
    tools: Mapped[list[Any]] = mapped_column(default=list)
    updated_at: Mapped[datetime] = _created()


class AgentInstance(Base):
    """One running replica of an agent, alive while its heartbeats are fresh."""

    __tablename__ = "agent_instances"
    instance_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    agent: Mapped[str] = mapped_column(ForeignKey("agents.name", ondelete="CASCADE"), index=True)
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="running")
    started_at: Mapped[datetime] = _created()
    last_heartbeat_at: Mapped[datetime] = _created()


class Bot(Base):
    """A registered script that the bot executor runs as a supervised subprocess."""

    __tablename__ = "bots"
    id: Mapped[uuid.UUID] = _uuid_pk()
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    command: Mapped[list[Any]] = mapped_column(default=list)
    cwd: Mapped[str | None] = mapped_column(String(2000))
    env: Mapped[dict[str, Any]] = mapped_column(default=dict)
    secret_keys: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")
    """Names of ``env`` entries whose values are secrets: masked in logs, never shown."""
    cpu_seconds_limit: Mapped[int | None] = mapped_column(Integer)
    memory_mb_limit: Mapped[int | None] = mapped_column(Integer)
    cpu_percent_limit: Mapped[float | None] = mapped_column(Float)
    restart_policy: Mapped[str] = mapped_column(String(20), default="on-failure")
    max_restarts: Mapped[int] = mapped_column(Integer, default=3)
    desired_state: Mapped[str] = mapped_column(String(20), default="stopped")
    host: Mapped[str | None] = mapped_column(String(200))
    """The executor (host name) the bot is pinned to; None until one registers or starts it."""
    source: Mapped[str] = mapped_column(String(20), default="cli", server_default="cli")
    """Where it was registered: 'cli' or 'manifest' (then ``manifest_path`` names the file)."""
    manifest_path: Mapped[str | None] = mapped_column(String(2000))
    started_by: Mapped[str | None] = mapped_column(String(200))
    started_channel: Mapped[str | None] = mapped_column(String(50))
    started_thread: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class BotRun(Base):
    """One run of a bot (one process): its pid, state, exit, resources and why it ended."""

    __tablename__ = "bot_runs"
    id: Mapped[uuid.UUID] = _uuid_pk()
    bot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bots.id", ondelete="CASCADE"), index=True)
    host: Mapped[str | None] = mapped_column(String(200), index=True)
    executor_pid: Mapped[int | None] = mapped_column(Integer)
    executor_started: Mapped[float | None] = mapped_column(Float)
    """The executor process that ran it (pid and start time): while that one lives, its runs are not
    stale to another executor on the same host."""
    pid: Mapped[int | None] = mapped_column(Integer)
    create_time: Mapped[float | None] = mapped_column(Float)
    """The process's start time (psutil), so a recorded pid is never mistaken for a reused one."""
    status: Mapped[str] = mapped_column(String(20), default="starting")
    restarts: Mapped[int] = mapped_column(Integer, default=0)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    signal: Mapped[int | None] = mapped_column(Integer)
    peak_rss: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    cpu_seconds: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    reason: Mapped[str | None] = mapped_column(Text)
    log_path: Mapped[str | None] = mapped_column(String(2000))
    started_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Schedule(Base):
    """A job that runs a command on a cron, an interval or once."""

    __tablename__ = "schedules"
    id: Mapped[uuid.UUID] = _uuid_pk()
    name: Mapped[str] = mapped_column(String(200), unique=True)
    target: Mapped[str] = mapped_column(Text)
    cron: Mapped[str | None] = mapped_column(String(100))
    every_seconds: Mapped[int | None] = mapped_column(Integer)
    run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    owner: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(50), default="cli")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    next_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _created()
    intents: Mapped[list[Any]] = mapped_column(default=list, server_default=sql_text("'[]'::jsonb"))
    owner_role: Mapped[str] = mapped_column(String(20), default="viewer", server_default="viewer")
    thread_id: Mapped[str | None] = mapped_column(String(200))
    concurrency: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    misfire: Mapped[str] = mapped_column(String(10), default="once", server_default="once")
    grace_seconds: Mapped[int] = mapped_column(Integer, default=60, server_default="60")


class ScheduledRun(Base):
    """One execution of a schedule."""

    __tablename__ = "scheduled_runs"
    id: Mapped[uuid.UUID] = _uuid_pk()
    schedule_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"), index=True)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime] = _created()
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(40), default="running")
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error: Mapped[str | None] = mapped_column(Text)
    trigger: Mapped[str] = mapped_column(String(20), default="schedule", server_default="schedule")
    __table_args__ = (
        # each occurrence is claimed once: the insert that loses this race runs nothing
        UniqueConstraint("schedule_id", "due_at", name="uq_scheduled_runs_occurrence"),
        Index(
            "ix_scheduled_runs_active", "status", postgresql_where=sql_text("status IN ('queued', 'running')")
        ),
    )


class Reminder(Base):
    """A reminder that fires as an event to the user's channel when due."""

    __tablename__ = "reminders"
    id: Mapped[uuid.UUID] = _uuid_pk()
    user_id: Mapped[str] = mapped_column(String(200), index=True)
    channel: Mapped[str] = mapped_column(String(50))
    thread_id: Mapped[str | None] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    fired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    call_key: Mapped[str | None] = mapped_column(String(200))
    """The idempotency key of the call that created it: running that call again finds it."""
    created_at: Mapped[datetime] = _created()
    __table_args__ = (
        Index("ix_reminders_due_pending", "due_at", postgresql_where=sql_text("status = 'pending'")),
        Index("ux_reminders_call_key", "call_key", unique=True),
    )


class ConnectorState(Base):
    """Cursor and settings of an outside-platform connector (Slack, Notion, webhooks)."""

    __tablename__ = "connector_state"
    connector: Mapped[str] = mapped_column(String(50), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class ToolResultRow(Base):
    """Results of tool calls by idempotency key, so a redelivered call never acts twice."""

    __tablename__ = "tool_results"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    tool: Mapped[str] = mapped_column(String(100))
    result: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = _created()


class CallLease(Base):
    """A side-effecting call's claim on its idempotency key while its handler runs; deleted with the
    stored result. An expired lease means its worker died mid-call."""

    __tablename__ = "call_leases"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    tool: Mapped[str] = mapped_column(String(100))
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    takeovers: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = _created()


class SystemMeta(Base):
    """Facts about this installation, e.g. the embedding model and its dimension."""

    __tablename__ = "system_meta"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(default=dict)


# --- web chat: users and Chainlit's data layer tables (issue 5) ---


class WebAccount(Base):
    """A web chat login: name, scrypt password hash, role. Not Chainlit's ``users`` table, which only
    records who has threads (Chainlit writes it on every login, whatever the login method)."""

    __tablename__ = "web_accounts"
    username: Mapped[str] = mapped_column(String(100), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class WebSession(Base):
    """A web login: its id travels in the login token and is checked on every request, so logging out or
    changing the account ends it at once (``storage.web_sessions``)."""

    __tablename__ = "web_sessions"
    id: Mapped[uuid.UUID] = _uuid_pk()
    username: Mapped[str] = mapped_column(String(100))
    provider: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[datetime] = _created()
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_because: Mapped[str | None] = mapped_column(String(100))


Index("ix_web_sessions_username", WebSession.username)
Index("ix_web_sessions_expires_at", WebSession.expires_at)
"""Revoking a person's sessions; clearing out sessions long expired."""


class LoginAttempt(Base):
    """Failed password logins of one account name or one client address (``storage.login_attempts``);
    the name or address is kept as a sha256 only (a password typed into the name field stays unread)."""

    __tablename__ = "login_attempts"
    scope: Mapped[str] = mapped_column(String(10), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ChainlitUser(Base):
    """Chainlit's data layer: one row per person who signed in to the web chat (names are Chainlit's)."""

    __tablename__ = "users"
    id: Mapped[uuid.UUID] = _uuid_pk()
    identifier: Mapped[str] = mapped_column(Text, unique=True)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB)
    created_at: Mapped[str | None] = mapped_column("createdAt", Text)


class ChainlitThread(Base):
    """Chainlit's data layer: a chat thread, owned by one user."""

    __tablename__ = "threads"
    id: Mapped[uuid.UUID] = _uuid_pk()
    created_at: Mapped[str | None] = mapped_column("createdAt", Text)
    name: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        "userId", UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    user_identifier: Mapped[str | None] = mapped_column("userIdentifier", Text)
    tags: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONB)


class ChainlitStep(Base):
    """Chainlit's data layer: a message or a step (tool call) in a thread."""

    __tablename__ = "steps"
    id: Mapped[uuid.UUID] = _uuid_pk()
    name: Mapped[str] = mapped_column(Text)
    type: Mapped[str] = mapped_column(Text)
    thread_id: Mapped[uuid.UUID] = mapped_column(
        "threadId", UUID(as_uuid=True), ForeignKey("threads.id", ondelete="CASCADE"), index=True
    )
    parent_id: Mapped[uuid.UUID | None] = mapped_column("parentId", UUID(as_uuid=True))
    streaming: Mapped[bool] = mapped_column(Boolean)
    wait_for_answer: Mapped[bool | None] = mapped_column("waitForAnswer", Boolean)
    is_error: Mapped[bool | None] = mapped_column("isError", Boolean)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONB)
    tags: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    input: Mapped[str | None] = mapped_column(Text)
    output: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[str | None] = mapped_column("createdAt", Text)
    command: Mapped[str | None] = mapped_column(Text)
    modes: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    start: Mapped[str | None] = mapped_column(Text)
    end: Mapped[str | None] = mapped_column(Text)
    generation: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    show_input: Mapped[str | None] = mapped_column("showInput", Text)
    language: Mapped[str | None] = mapped_column(Text)
    indent: Mapped[int | None] = mapped_column(Integer)
    default_open: Mapped[bool | None] = mapped_column("defaultOpen", Boolean)
    auto_collapse: Mapped[bool | None] = mapped_column("autoCollapse", Boolean)


class ChainlitElement(Base):
    """Chainlit's data layer: a file or media element attached to a step."""

    __tablename__ = "elements"
    id: Mapped[uuid.UUID] = _uuid_pk()
    thread_id: Mapped[uuid.UUID | None] = mapped_column(
        "threadId", UUID(as_uuid=True), ForeignKey("threads.id", ondelete="CASCADE"), index=True
    )
    type: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    chainlit_key: Mapped[str | None] = mapped_column("chainlitKey", Text)
    name: Mapped[str] = mapped_column(Text)
    display: Mapped[str | None] = mapped_column(Text)
    object_key: Mapped[str | None] = mapped_column("objectKey", Text)
    size: Mapped[str | None] = mapped_column(Text)
    page: Mapped[int | None] = mapped_column(Integer)
    language: Mapped[str | None] = mapped_column(Text)
    for_id: Mapped[uuid.UUID | None] = mapped_column("forId", UUID(as_uuid=True))
    mime: Mapped[str | None] = mapped_column(Text)
    props: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    auto_play: Mapped[bool | None] = mapped_column("autoPlay", Boolean)
    player_config: Mapped[dict[str, Any] | None] = mapped_column("playerConfig", JSONB)


class ChainlitFeedback(Base):
    """Chainlit's data layer: a thumbs up or down on a step."""

    __tablename__ = "feedbacks"
    id: Mapped[uuid.UUID] = _uuid_pk()
    for_id: Mapped[uuid.UUID] = mapped_column("forId", UUID(as_uuid=True), index=True)
    thread_id: Mapped[uuid.UUID | None] = mapped_column(
        "threadId", UUID(as_uuid=True), ForeignKey("threads.id", ondelete="CASCADE")
    )
    value: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)


# --- knowledge and embeddings (issue 7) ---

Index(
    "ix_memories_episodes",
    Memory.user_id,
    Memory.kind,
    Memory.data["thread"].astext,
    Memory.created_at,
)
"""Episodic memory: a thread's latest turns for the LLM's context, without scanning all of a user's rows."""
Index("ix_knowledge_entries_created_at", KnowledgeEntry.created_at)
"""Newest documents first (listings, re-embedding in order)."""

# --- MCP access tokens (issue 8) ---


class McpToken(Base):
    """A bearer token of the MCP HTTP endpoint: only its sha256 is kept; it acts as ``user_id``, ``role``."""

    __tablename__ = "mcp_tokens"
    id: Mapped[uuid.UUID] = _uuid_pk()
    name: Mapped[str] = mapped_column(String(100), unique=True)
    user_id: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = _created()
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class BridgedTool(Base):
    """A tool of an outside MCP server served by a bridge agent, so every Kommandant process can list it."""

    __tablename__ = "mcp_bridged_tools"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    agent: Mapped[str] = mapped_column(String(100), index=True)
    remote_name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    input_schema: Mapped[dict[str, Any]] = mapped_column(default=dict)
    output_schema: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    risk: Mapped[str] = mapped_column(String(20))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


# --- uploads staged for the knowledge agent (one front-door contract) ---


class StagedUpload(Base):
    """A file a front door received, waiting for the knowledge agent to ingest it (then deleted)."""

    __tablename__ = "staged_uploads"
    id: Mapped[uuid.UUID] = _uuid_pk()
    owner: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(500))
    size: Mapped[int] = mapped_column(BigInteger)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = _created()


Index("ix_staged_uploads_created_at", StagedUpload.created_at)
"""Finding stale staged uploads (a front door that staged a file and never asked for it to be ingested)."""


# --- Notion knowledge sync (issue 20) ---


class NotionSource(Base):
    """One configured Notion data source or page and how its last syncs went (``kommandant doctor``)."""

    __tablename__ = "notion_sources"
    source_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # data_source | page
    cursor: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """The newest ``last_edited_time`` imported: the next sync asks from a little before it."""
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_ok_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reconciled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    pages: Mapped[int] = mapped_column(Integer, default=0)
    imported: Mapped[int] = mapped_column(Integer, default=0)
    removed: Mapped[int] = mapped_column(Integer, default=0)
    conflicts: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list[Any]] = mapped_column(default=list)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class NotionPage(Base):
    """A Notion page imported into the knowledge base: which entry holds it and which version it is."""

    __tablename__ = "notion_pages"
    page_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    source_id: Mapped[str] = mapped_column(
        ForeignKey("notion_sources.source_id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(2000))
    title: Mapped[str] = mapped_column(String(500))
    last_edited_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    content_hash: Mapped[str] = mapped_column(String(64))
    entry_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("knowledge_entries.id", ondelete="SET NULL"), index=True
    )
    synced_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PanelEvent(Base):
    """One event of the control panel's live stream; its id is the stream's ``Last-Event-ID``.

    Filled by a trigger on ``audit_log`` (migration 0011) and by the panel's recorder (bus-only events).
    """

    __tablename__ = "panel_events"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)
    kind: Mapped[str] = mapped_column(String(50))
    owner: Mapped[str | None] = mapped_column(String(200))
    """Whose event it is (who may see it besides admins); NULL: a system event everyone may see."""
    data: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=sql_text("'{}'::jsonb"))
    dedupe: Mapped[str | None] = mapped_column(String(300))

    __table_args__ = (
        UniqueConstraint("dedupe", name="uq_panel_events_dedupe"),
        Index("ix_panel_events_kind_id", "kind", "id"),
    )


# --- connectors: Slack and webhooks (issue 20) ---


class SlackUser(Base):
    """A Slack user mapped to a Kommandant account (``kommandant slack map``): their turns run as it."""

    __tablename__ = "slack_users"
    slack_user_id: Mapped[str] = mapped_column(String(50), primary_key=True)
    account: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    """The role when the account is no web account (a web account's own, current role wins)."""
    created_at: Mapped[datetime] = _created()


class ConnectorDelivery(Base):
    """An inbound delivery seen once (a Slack ``event_id``, a webhook delivery id) or an outbound message
    sent once (a reminder to Slack): the insert that loses the race runs nothing."""

    __tablename__ = "connector_deliveries"
    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    delivery_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    received_at: Mapped[datetime] = _created()


Index("ix_connector_deliveries_received_at", ConnectorDelivery.received_at)
"""Forgetting old delivery ids (platforms retry within minutes, not weeks)."""
