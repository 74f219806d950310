"""The tamper-evident audit trail: an append-only hash chain in ``audit_log`` with its head in ``audit_head``.

Every row stores the previous row's hash and ``sha256(prev_hash + canonical JSON of its content)``.
Every row has an owner, the person whose turn or call it records: a person reads only their own rows,
an admin reads all (``tail(owner=...)``).
Changing, deleting or reordering rows breaks the chain; the head row (newest seq and hash) makes
deleting the newest rows show too. Appends are serialised by a transaction-scoped advisory lock, so
any number of writers in any number of processes extend one unbroken chain.

What a hash chain without an outside anchor cannot show: someone with write access who rewrites every
row from some point on *and* the head. Keep a copy of the head hash that ``verify`` reports elsewhere
(a ticket, a log shipped off the host) to catch that as well.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Row, and_, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.errors import StorageError
from storage.models import AuditHead, AuditRow

GENESIS_HASH = "0" * 64
"""The ``prev_hash`` of the first row."""

REDACTED = "[redacted]"

_LOCK_KEY = 0x6B6F6D6D61756474  # "kommaudt": the advisory lock that serialises appends
_HEAD_ID = 1


class AuditError(StorageError):
    """The audit trail could not be read or written."""


class AuditIntegrityError(AuditError):
    """The audit trail is in a state that appending would hide, e.g. its head row was deleted."""


class AuditEntry(BaseModel):
    """One row of the audit trail."""

    model_config = ConfigDict(frozen=True)

    seq: int = Field(description="Position in the chain, 1 for the first row, without gaps.")
    ts: datetime = Field(description="When the row was written (UTC).")
    actor: str = Field(description="Who acted: a user id, an agent name or 'system'.")
    owner: str | None = Field(
        default=None,
        description="Whose row it is: the person whose turn or call it records (an agent may act for "
        "them); None means the actor's.",
    )
    channel: str | None = Field(default=None, description="Front door: web, slack, cli, mcp, voice.")
    thread_id: str | None = Field(default=None, description="Conversation thread, if any.")
    kind: str = Field(description="What happened, e.g. 'intent', 'tool_call', 'approval'.")
    tool: str | None = Field(default=None, description="The tool involved, if any.")
    data: dict[str, Any] = Field(default_factory=dict, description="Details, with secrets redacted.")
    prev_hash: str = Field(description="Hash of the previous row (64 zeros for the first).")
    hash: str = Field(description="sha256 of prev_hash and the canonical JSON of this row's content.")


class VerifyReport(BaseModel):
    """The outcome of walking the whole chain."""

    ok: bool = Field(description="True when every row and the head check out.")
    rows_checked: int = Field(description="Rows found intact before the first problem (all rows when ok).")
    first_bad_seq: int | None = Field(default=None, description="The first row that cannot be trusted.")
    problem: str | None = Field(default=None, description="A sentence saying what is wrong, or None.")
    head_hash: str | None = Field(
        default=None, description="The newest hash per the head; a copy kept elsewhere anchors the chain."
    )


# --- pure functions -------------------------------------------------------------------------------

_SECRET_KEY = re.compile(
    r"(?:^|_)(?:password|passwd|passphrase|pass|pwd|secret|token|api_?key|authorization|auth|cookie"
    r"|credentials?|private_?key|access_?key|signature)(?:$|_)"
)
_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # key=value and "key": "value" inside free text (query strings, headers, log lines)
    (
        re.compile(
            r"(?i)([\w-]*(?:password|passwd|secret|token|api[_-]?key|authorization)[\"']?\s*[:=]\s*[\"']?)"
            r"(?!\[redacted\])((?:bearer|basic)\s+)?[^\s\"'&,;]+"
        ),
        r"\1\2" + REDACTED,
    ),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9\-._~+/]{8,}=*"), r"\1" + REDACTED),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{8,}"), REDACTED),  # Slack bot/user/app tokens
    (re.compile(r"\bxapp-\d-[A-Za-z0-9-]{8,}"), REDACTED),  # Slack app-level tokens
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), REDACTED),  # OpenAI / Anthropic style keys
    (re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{20,})"), REDACTED),
    (re.compile(r"\b(?:secret|ntn)_[A-Za-z0-9]{30,}"), REDACTED),  # Notion integration tokens
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), REDACTED),  # AWS access key ids
    (re.compile(r"(https://hooks\.slack\.com/services/)[A-Za-z0-9/]+"), r"\1" + REDACTED),
    (re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*):[^@\s/]+@"), r"\1:" + REDACTED + "@"),
    (
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL),
        REDACTED,
    ),
)


def _is_secret_key(key: str) -> bool:
    snake = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", key)  # "XAPIKey" -> "XAPI_Key"
    snake = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", snake)  # "clientSecret" -> "client_Secret"
    snake = re.sub(r"[^a-z0-9]+", "_", snake.lower())
    return _SECRET_KEY.search(snake) is not None


def _redact_text(text: str) -> str:
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_secrets(obj: Any) -> Any:
    """A copy of ``obj`` with secrets replaced by ``"[redacted]"``; the input is never changed.

    Values under keys that name a secret (``password``, ``api_key``, ``Authorization``, ``clientSecret``,
    … at any depth, any case) are replaced whole; in every other string, bearer tokens, Slack, OpenAI,
    GitHub, Notion and AWS tokens, ``key=value`` secrets and passwords in URLs are replaced.
    """
    if isinstance(obj, Mapping):
        return {
            key: (REDACTED if value is not None else None)
            if isinstance(key, str) and _is_secret_key(key)
            else redact_secrets(value)
            for key, value in obj.items()
        }
    if isinstance(obj, list):
        return [redact_secrets(item) for item in obj]
    if isinstance(obj, tuple):
        return tuple(redact_secrets(item) for item in obj)
    if isinstance(obj, str):
        return _redact_text(obj)
    return obj


def _clean_text(text: str) -> str:
    """PostgreSQL rejects NUL characters and lone surrogates cannot be encoded: drop or replace them."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def to_json_value(obj: Any) -> Any:
    """``obj`` as plain JSON values that survive a JSONB round trip unchanged, so hashes stay stable.

    Dates become ISO strings, models their JSON dump, enums their value, tuples and sets lists,
    other objects ``str()``. Floats JSONB would hand back differently become what it hands back:
    non-finite ones strings, huge ones (written with an exponent) integers, ``-0.0`` ``0.0``.
    """
    if obj is None or type(obj) in (bool, int):
        return obj
    if isinstance(obj, enum.Enum):
        return to_json_value(obj.value)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, str):
        return _clean_text(obj)
    if isinstance(obj, float):
        if not math.isfinite(obj):
            return str(obj)
        if abs(obj) >= 1e16:
            return int(obj)
        return obj + 0.0  # turns -0.0 into 0.0
    if isinstance(obj, Mapping):
        return {_clean_text(str(k)): to_json_value(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [to_json_value(item) for item in obj]
    if isinstance(obj, BaseModel):
        return to_json_value(obj.model_dump(mode="json"))
    if isinstance(obj, datetime | date | time):
        return obj.isoformat()
    return _clean_text(str(obj))


def canonical_json(obj: Any) -> str:
    """The one JSON spelling of ``obj`` that hashes are computed over."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def entry_hash(
    prev_hash: str,
    *,
    seq: int,
    ts: datetime,
    actor: str,
    channel: str | None,
    thread_id: str | None,
    kind: str,
    tool: str | None,
    data: Mapping[str, Any],
    owner: str | None = None,
) -> str:
    """``sha256(prev_hash + canonical JSON of the row's content)`` as 64 hex digits.

    The owner is part of the content only where it differs from the actor: rows written before rows had
    owners (owned by their actor) keep their hashes, while moving a row to another owner breaks it.
    """
    content: dict[str, Any] = {
        "seq": seq,
        "ts": ts.astimezone(UTC).isoformat(),
        "actor": actor,
        "channel": channel,
        "thread_id": thread_id,
        "kind": kind,
        "tool": tool,
        "data": data,
    }
    if owner is not None and owner != actor:
        content["owner"] = owner
    return hashlib.sha256((prev_hash + canonical_json(content)).encode("utf-8")).hexdigest()


# --- the repository -------------------------------------------------------------------------------

_COLUMNS = (
    AuditRow.seq,
    AuditRow.ts,
    AuditRow.actor,
    AuditRow.owner,
    AuditRow.channel,
    AuditRow.thread_id,
    AuditRow.kind,
    AuditRow.tool,
    AuditRow.data,
    AuditRow.prev_hash,
    AuditRow.hash,
)


_HEAD = select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == _HEAD_ID)


def _entry(row: Row[Any]) -> AuditEntry:
    return AuditEntry.model_validate(dict(row._mapping))


def _row_hash(row: Row[Any] | AuditEntry, prev_hash: str) -> str:
    return entry_hash(
        prev_hash,
        seq=row.seq,
        ts=row.ts,
        actor=row.actor,
        channel=row.channel,
        thread_id=row.thread_id,
        kind=row.kind,
        tool=row.tool,
        data=row.data,
        owner=row.owner,
    )


@asynccontextmanager
async def _translated(action: str) -> AsyncIterator[None]:
    """Database failures become one sentence; the original stays chained for the log."""
    try:
        yield
    except (SQLAlchemyError, OSError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise AuditError(f"Could not {action} the audit trail: {reason}") from err


class AuditDraft(BaseModel):
    """A row to append: what happened, who did it, where (the chain position and hashes come later)."""

    model_config = ConfigDict(frozen=True)

    kind: str
    actor: str
    owner: str | None = None
    """The person the row belongs to; None: the actor (a person acting for themselves)."""
    channel: str | None = None
    thread_id: str | None = None
    tool: str | None = None
    data: dict[str, Any] | None = None

    def cleaned(self) -> AuditDraft:
        """Secrets redacted, text made storable, data reduced to plain JSON."""
        return AuditDraft(
            kind=_clean_text(self.kind),
            actor=_clean_text(self.actor),
            owner=_clean_text(self.owner if self.owner is not None else self.actor),
            channel=_clean_text(self.channel) if self.channel is not None else None,
            thread_id=_clean_text(self.thread_id) if self.thread_id is not None else None,
            tool=_clean_text(self.tool) if self.tool is not None else None,
            data=redact_secrets(to_json_value(self.data or {})),
        )


class AuditLog:
    """Append to, verify and read the audit trail."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def append(
        self,
        kind: str,
        *,
        actor: str,
        owner: str | None = None,
        channel: str | None = None,
        thread_id: str | None = None,
        tool: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """Add one row at the end of the chain and return it; secrets in ``data`` are redacted first.

        ``owner``: the person the row belongs to, when an agent acts for them; by default the actor.

        Raises ``AuditIntegrityError`` when the head row is missing while rows exist: appending would
        paper over that deletion. Any other database failure raises ``AuditError``.
        """
        draft = AuditDraft(
            kind=kind, actor=actor, owner=owner, channel=channel, thread_id=thread_id, tool=tool, data=data
        )
        return (await self.append_many([draft]))[0]

    async def append_many(self, drafts: Sequence[AuditDraft]) -> list[AuditEntry]:
        """Add several rows, in order, in one transaction under one lock (a turn's steps at once)."""
        if not drafts:
            return []
        cleaned = [draft.cleaned() for draft in drafts]
        entries: list[AuditEntry] = []
        async with _translated("append to"), self._sessionmaker() as session, session.begin():
            await session.execute(select(func.pg_advisory_xact_lock(_LOCK_KEY)))
            seq, prev_hash = await _next_position(session)
            now = datetime.now(UTC)  # taken under the lock, so time order follows seq order
            for offset, draft in enumerate(cleaned):
                entry = AuditEntry(
                    seq=seq + offset,
                    ts=now,
                    actor=draft.actor,
                    owner=draft.owner,
                    channel=draft.channel,
                    thread_id=draft.thread_id,
                    kind=draft.kind,
                    tool=draft.tool,
                    data=draft.data or {},
                    prev_hash=prev_hash,
                    hash="",
                )
                entry = entry.model_copy(update={"hash": _row_hash(entry, prev_hash)})
                entries.append(entry)
                prev_hash = entry.hash
            await session.execute(insert(AuditRow), [e.model_dump() for e in entries])
            last = entries[-1]
            upsert = insert(AuditHead).values(id=_HEAD_ID, seq=last.seq, hash=last.hash)
            await session.execute(
                upsert.on_conflict_do_update(
                    index_elements=[AuditHead.id], set_={"seq": last.seq, "hash": last.hash}
                )
            )
        return entries

    async def verify(self, *, batch: int = 5000) -> VerifyReport:
        """Walk the whole chain in ``seq`` order, ``batch`` rows at a time, and report the first problem.

        Reads one consistent snapshot, so appends running meanwhile neither disturb nor fail the check.
        """
        if batch < 1:
            raise ValueError("batch must be at least 1")
        async with _translated("read"), self._sessionmaker() as session, session.begin():
            # one snapshot for the head and every batch: rows committed meanwhile stay invisible
            await session.connection(
                execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
            )
            head = (await session.execute(_HEAD)).first()
            checker = _ChainChecker()
            last_seq = 0
            while True:
                rows = (
                    await session.execute(
                        select(*_COLUMNS).where(AuditRow.seq > last_seq).order_by(AuditRow.seq).limit(batch)
                    )
                ).all()
                for row in rows:
                    if (report := checker.check(row)) is not None:
                        return report
                if len(rows) < batch:
                    break
                last_seq = rows[-1].seq
        return checker.finish(head.seq if head else None, head.hash if head else None)

    async def tail(
        self, limit: int = 20, *, kind: str | None = None, owner: str | None = None
    ) -> list[AuditEntry]:
        """The newest ``limit`` rows (of ``kind``, if given), oldest first and newest last.

        ``owner``: only that person's rows (what a person who is not an admin may see); None: everyone's.
        """
        if limit <= 0:
            return []
        query = select(*_COLUMNS).order_by(AuditRow.seq.desc()).limit(limit)
        if kind is not None:
            query = query.where(AuditRow.kind == kind)
        if owner is not None:
            # a row without an owner is its actor's, as in the hash (entry_hash)
            unowned = and_(AuditRow.owner.is_(None), AuditRow.actor == owner)
            query = query.where(or_(AuditRow.owner == owner, unowned))
        async with _translated("read"), self._sessionmaker() as session:
            rows = (await session.execute(query)).all()
        return [_entry(row) for row in reversed(rows)]


async def _next_position(session: AsyncSession) -> tuple[int, str]:
    """The seq and prev_hash of the next row, from the head (call with the append lock held)."""
    head = (await session.execute(_HEAD)).first()
    if head is not None:
        return head.seq + 1, head.hash
    if await session.scalar(select(AuditRow.seq).limit(1)) is not None:
        raise AuditIntegrityError(
            "The audit trail has rows but its head row is missing (it was deleted), so nothing more is "
            "appended. Run `kommandant audit verify` and investigate before repairing the head."
        )
    return 1, GENESIS_HASH


class _ChainChecker:
    """Checks rows one at a time in seq order, keeping only the previous row's seq and hash."""

    def __init__(self) -> None:
        self.rows_checked = 0
        self.last_seq = 0
        self.last_hash = GENESIS_HASH

    def _bad(self, seq: int | None, problem: str, head_hash: str | None = None) -> VerifyReport:
        return VerifyReport(
            ok=False, rows_checked=self.rows_checked, first_bad_seq=seq, problem=problem, head_hash=head_hash
        )

    def check(self, row: Row[Any]) -> VerifyReport | None:
        """None when ``row`` extends the chain correctly, else the report naming the problem."""
        expected = self.last_seq + 1
        if row.seq != expected:
            after = (
                f"row {self.last_seq} is followed by row {row.seq}"
                if self.last_seq
                else (f"the first row is {row.seq}")
            )
            missing = (
                f"row {expected} is" if row.seq == expected + 1 else f"rows {expected}-{row.seq - 1} are"
            )
            return self._bad(expected, f"sequence gap: {missing} missing ({after}): rows were deleted.")
        if row.prev_hash != self.last_hash:
            rewritten = f"row {self.last_seq} was rewritten, or " if self.last_seq else ""
            return self._bad(
                row.seq,
                f"row {row.seq}: previous-hash link is broken ({rewritten}a row before it was deleted or "
                "reordered).",
            )
        if _row_hash(row, row.prev_hash) != row.hash:
            return self._bad(row.seq, f"row {row.seq}: content does not match its hash (modified).")
        self.rows_checked += 1
        self.last_seq = row.seq
        self.last_hash = row.hash
        return None

    def finish(self, head_seq: int | None, head_hash: str | None) -> VerifyReport:
        """Compare the newest row with the head once every row has been checked."""
        newest = self.last_seq
        if head_seq is None:
            if newest:
                return self._bad(
                    None, f"the audit head is missing but the log has {newest} rows: it was deleted."
                )
            return VerifyReport(ok=True, rows_checked=0)
        if newest < head_seq:
            what = f"the newest row is {newest}" if newest else "the log is empty"
            return self._bad(
                newest + 1, f"{what} but the head says {head_seq}: rows were deleted from the end.", head_hash
            )
        if newest > head_seq:
            return self._bad(
                head_seq + 1,
                f"the head says {head_seq} but the log goes up to row {newest}: the head was forged or rows "
                "were added around it.",
                head_hash,
            )
        if head_hash != self.last_hash:
            return self._bad(
                newest,
                f"row {newest}: the head's hash does not match it (the newest row was rewritten or the head "
                "was forged).",
                head_hash,
            )
        return VerifyReport(ok=True, rows_checked=self.rows_checked, head_hash=head_hash)


__all__ = [
    "GENESIS_HASH",
    "REDACTED",
    "AuditEntry",
    "AuditError",
    "AuditIntegrityError",
    "AuditLog",
    "VerifyReport",
    "canonical_json",
    "entry_hash",
    "redact_secrets",
    "to_json_value",
]
