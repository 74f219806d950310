"""The bot registry: what each bot is (registered from the CLI or a manifest), which executor it is
pinned to, whether it should run, and one row per run updated on every state change.

Every write is one transaction. A bot's configuration is a ``BotConfig``: the CLI and the manifests
build one, so both refuse the same bad input with the same sentence.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql import Subquery

from storage.errors import ConflictError, NotFoundError, StorageError
from storage.models import Bot, BotRun
from storage.records import Record

BOT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$")
"""A bot's name: letters, digits, '-' and '_' (at most 64, starting with a letter or digit)."""
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

RestartPolicy = Literal["no", "on-failure", "always"]
RunState = Literal["starting", "running", "stopping", "stopped", "exited", "failed"]
ENDED: frozenset[str] = frozenset({"stopped", "exited", "failed"})
"""Run states after which the process is gone."""
LIVE: frozenset[str] = frozenset({"starting", "running", "stopping"})
"""Run states while a process may exist."""

Argument = Annotated[str, StringConstraints(min_length=1, max_length=4000)]


class InvalidBotError(StorageError):
    """A bot's configuration is not valid (a bad name, an empty command, an unknown restart policy)."""


def check_bot_name(name: str) -> str:
    """``name`` if it is a valid bot name, else ``InvalidBotError`` saying what a name may hold."""
    if not BOT_NAME.match(name):
        shown = name if len(name) <= 80 else name[:77] + "..."
        raise InvalidBotError(
            f"{shown!r} is not a bot name: use letters, digits, '-' and '_' (at most 64, "
            "starting with a letter or digit)."
        )
    return name


class BotConfig(BaseModel):
    """What a person registers: the command (an argument list, never a shell line) and how to run it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Letters, digits, '-' and '_'.")
    command: tuple[Argument, ...] = Field(
        min_length=1, description="Program and arguments, run without a shell."
    )
    cwd: str | None = Field(default=None, description="Working folder; the executor's own when unset.")
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment variables.")
    secret_keys: tuple[str, ...] = Field(
        default=(), description="Names of env entries whose values are secrets: masked in logs, never shown."
    )
    memory_mb: int | None = Field(default=None, ge=1, description="Most RSS of the process tree, in MB.")
    cpu_seconds: int | None = Field(default=None, ge=1, description="Most CPU time per run (RLIMIT_CPU).")
    cpu_percent: float | None = Field(
        default=None, gt=0, le=100 * (os.cpu_count() or 1), description="Most CPU share, % of one core."
    )
    restart: RestartPolicy = Field(default="on-failure", description="When to start it again after it ends.")
    max_restarts: int = Field(default=3, ge=0, le=1000, description="Restarts in a row before giving up.")
    description: str = Field(default="", max_length=500, description="What the bot does, for people.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not BOT_NAME.match(value):
            raise ValueError("use letters, digits, '-' and '_' (at most 64, starting with a letter or digit)")
        return value

    @field_validator("command")
    @classmethod
    def _no_nul(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any("\x00" in part for part in value):
            raise ValueError("an argument holds a NUL character")
        return value

    @field_validator("env")
    @classmethod
    def _env_keys(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [key for key in value if not _ENV_KEY.match(key)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not an environment variable name (letters, digits, '_')")
        if any("\x00" in v for v in value.values()):
            raise ValueError("the value of a variable holds a NUL character")
        return value

    @field_validator("secret_keys")
    @classmethod
    def _secrets_are_env(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        env = info.data.get("env", {})
        missing = [key for key in value if key not in env]
        if missing:
            raise ValueError(f"secret {missing[0]!r} is not one of the env entries")
        return value

    @property
    def secret_values(self) -> tuple[str, ...]:
        """The values to mask wherever the bot's output or settings are shown."""
        return tuple(self.env[key] for key in self.secret_keys if self.env[key])


class BotRunRecord(Record):
    id: uuid.UUID
    bot: str
    host: str | None
    executor_pid: int | None
    executor_started: float | None
    pid: int | None
    create_time: float | None
    status: str
    restarts: int
    exit_code: int | None
    signal: int | None
    peak_rss: int
    cpu_seconds: float
    reason: str | None
    log_path: str | None
    started_at: datetime
    updated_at: datetime
    ended_at: datetime | None


class BotRecord(Record):
    id: uuid.UUID
    config: BotConfig
    desired_state: str
    host: str | None
    source: str
    manifest_path: str | None
    started_by: str | None
    started_channel: str | None
    started_thread: str | None
    created_at: datetime
    updated_at: datetime
    last_run: BotRunRecord | None = None

    @property
    def name(self) -> str:
        return self.config.name


@dataclass(frozen=True, slots=True)
class RunChange:
    """One state change of a bot's process, as the executor reports it."""

    state: RunState
    pid: int | None = None
    create_time: float | None = None
    exit_code: int | None = None
    signal: int | None = None
    reason: str | None = None
    restarts: int = 0
    peak_rss: int = 0
    cpu_seconds: float = 0.0
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ManifestSync:
    """What a reload changed: names added, updated, removed, and kept because they should run."""

    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    kept_running: tuple[str, ...] = ()


def _config(row: Bot) -> BotConfig:
    return BotConfig(
        name=row.name,
        command=tuple(row.command),
        cwd=row.cwd,
        env=dict(row.env),
        secret_keys=tuple(row.secret_keys),
        memory_mb=row.memory_mb_limit,
        cpu_seconds=row.cpu_seconds_limit,
        cpu_percent=row.cpu_percent_limit,
        restart=row.restart_policy,
        max_restarts=row.max_restarts,
        description=row.description,
    )


def _apply(row: Bot, config: BotConfig) -> None:
    row.name = config.name
    row.command = list(config.command)
    row.cwd = config.cwd
    row.env = dict(config.env)
    row.secret_keys = list(config.secret_keys)
    row.memory_mb_limit = config.memory_mb
    row.cpu_seconds_limit = config.cpu_seconds
    row.cpu_percent_limit = config.cpu_percent
    row.restart_policy = config.restart
    row.max_restarts = config.max_restarts
    row.description = config.description


def _record(row: Bot, last: BotRun | None) -> BotRecord:
    return BotRecord(
        id=row.id,
        config=_config(row),
        desired_state=row.desired_state,
        host=row.host,
        source=row.source,
        manifest_path=row.manifest_path,
        started_by=row.started_by,
        started_channel=row.started_channel,
        started_thread=row.started_thread,
        created_at=row.created_at,
        updated_at=row.updated_at,
        last_run=None if last is None else _run(last, row.name),
    )


def _run(row: BotRun, bot: str) -> BotRunRecord:
    return BotRunRecord(
        id=row.id,
        bot=bot,
        host=row.host,
        executor_pid=row.executor_pid,
        executor_started=row.executor_started,
        pid=row.pid,
        create_time=row.create_time,
        status=row.status,
        restarts=row.restarts,
        exit_code=row.exit_code,
        signal=row.signal,
        peak_rss=row.peak_rss,
        cpu_seconds=row.cpu_seconds,
        reason=row.reason,
        log_path=row.log_path,
        started_at=row.started_at,
        updated_at=row.updated_at,
        ended_at=row.ended_at,
    )


def _latest_runs() -> Subquery:
    """The newest run of every bot, as a subquery of run ids."""
    return (
        select(BotRun.id)
        .ext(distinct_on(BotRun.bot_id))
        .order_by(BotRun.bot_id, BotRun.started_at.desc(), BotRun.id)
        .subquery()
    )


class BotRegistry:
    """Registered bots and their runs in Postgres."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    # --- registering ---

    async def add(self, config: BotConfig, *, host: str | None = None) -> BotRecord:
        """Register a bot from the CLI; ``ConflictError`` when the name is taken."""
        async with self._sessionmaker() as session, session.begin():
            existing = await session.scalar(select(Bot).where(Bot.name == config.name).with_for_update())
            if existing is not None:
                where = f" from {existing.manifest_path}" if existing.manifest_path else ""
                raise ConflictError(
                    f"A bot called {config.name!r} is registered already{where}; remove it first."
                )
            row = Bot(source="cli", host=host, desired_state="stopped")
            _apply(row, config)
            session.add(row)
            await session.flush()
            await session.refresh(row)
            return _record(row, None)

    async def remove(self, name: str) -> BotRecord:
        """Unregister a bot and its run history; refused while it should run (stop it first)."""
        async with self._sessionmaker() as session, session.begin():
            row = await self._row(session, name, lock=True)
            if row.desired_state == "running":
                raise ConflictError(f"The {name} bot is running; stop it before removing it.")
            record = _record(row, None)
            await session.delete(row)
            return record

    async def sync_manifests(
        self, configs: Sequence[tuple[BotConfig, str]], folder: str, *, host: str | None = None
    ) -> ManifestSync:
        """Make the bots registered from manifests in ``folder`` match ``configs`` (each with its file), in
        one transaction: new ones added, changed ones updated, vanished ones removed unless they should
        run. ``ConflictError`` names the file when a manifest reuses the name of a bot from elsewhere."""
        prefix = folder.rstrip("/") + "/"
        added: list[str] = []
        updated: list[str] = []
        removed: list[str] = []
        kept: list[str] = []
        async with self._sessionmaker() as session, session.begin():
            rows = {row.name: row for row in await session.scalars(select(Bot).with_for_update())}
            wanted = {config.name for config, _ in configs}
            for config, path in configs:
                row = rows.get(config.name)
                if row is None:
                    row = Bot(source="manifest", manifest_path=path, host=host, desired_state="stopped")
                    _apply(row, config)
                    session.add(row)
                    added.append(config.name)
                    continue
                if row.source != "manifest" or not (row.manifest_path or "").startswith(prefix):
                    where = row.manifest_path or "the command line"
                    raise ConflictError(
                        f"{path}: a bot called {config.name!r} is registered already from {where}."
                    )
                if _config(row) != config or row.manifest_path != path:
                    _apply(row, config)
                    row.manifest_path = path
                    updated.append(config.name)
            for name, row in sorted(rows.items()):
                ours = row.source == "manifest" and (row.manifest_path or "").startswith(prefix)
                if not ours or name in wanted:
                    continue
                if row.desired_state == "running":
                    kept.append(name)
                else:
                    await session.delete(row)
                    removed.append(name)
        return ManifestSync(tuple(added), tuple(updated), tuple(removed), tuple(kept))

    # --- reading ---

    async def get(self, name: str) -> BotRecord:
        """One bot with its newest run; ``NotFoundError`` names the bots there are."""
        async with self._sessionmaker() as session:
            row = await self._row(session, name)
            last = await session.scalar(
                select(BotRun).where(BotRun.bot_id == row.id).order_by(BotRun.started_at.desc()).limit(1)
            )
            return _record(row, last)

    async def all(self) -> list[BotRecord]:
        """Every bot by name, each with its newest run."""
        latest = _latest_runs()
        query = (
            select(Bot, BotRun)
            .outerjoin(BotRun, (BotRun.bot_id == Bot.id) & BotRun.id.in_(select(latest.c.id)))
            .order_by(Bot.name)
        )
        async with self._sessionmaker() as session:
            return [_record(bot, run) for bot, run in (await session.execute(query)).all()]

    async def names(self) -> list[str]:
        async with self._sessionmaker() as session:
            return list(await session.scalars(select(Bot.name).order_by(Bot.name)))

    async def should_run(self, host: str) -> list[BotRecord]:
        """Bots whose desired state is running and that are pinned to ``host`` (or to no executor)."""
        return [
            record
            for record in await self.all()
            if record.desired_state == "running" and record.host in (None, host)
        ]

    async def open_runs(self, host: str) -> list[BotRunRecord]:
        """Runs on ``host`` that never ended (their process may still exist)."""
        query = (
            select(BotRun, Bot.name)
            .join(Bot, Bot.id == BotRun.bot_id)
            .where(BotRun.host == host, BotRun.ended_at.is_(None))
            .order_by(BotRun.started_at)
        )
        async with self._sessionmaker() as session:
            return [_run(run, name) for run, name in (await session.execute(query)).all()]

    async def runs(self, name: str, limit: int = 20) -> list[BotRunRecord]:
        """A bot's runs, newest first."""
        async with self._sessionmaker() as session:
            row = await self._row(session, name)
            query = (
                select(BotRun).where(BotRun.bot_id == row.id).order_by(BotRun.started_at.desc()).limit(limit)
            )
            return [_run(run, name) for run in await session.scalars(query)]

    # --- running ---

    async def want(
        self,
        name: str,
        state: Literal["running", "stopped"],
        *,
        host: str,
        user: str | None = None,
        channel: str | None = None,
        thread: str | None = None,
    ) -> BotRecord:
        """Set what the bot should be doing. Starting it pins it to ``host`` when it is pinned nowhere and
        records who started it (their channel hears of its state changes); a bot pinned to another
        executor is refused with ``ConflictError`` naming that host."""
        async with self._sessionmaker() as session, session.begin():
            row = await self._row(session, name, lock=True)
            if row.host not in (None, host):
                raise ConflictError(
                    f"The {name} bot is pinned to the executor on {row.host}; this is the executor on {host}."
                )
            row.desired_state = state
            if state == "running":
                row.host = host
                if user is not None:
                    row.started_by, row.started_channel, row.started_thread = user, channel, thread
            await session.flush()
            await session.refresh(row)
            return _record(row, None)

    async def record(
        self,
        name: str,
        change: RunChange,
        *,
        host: str,
        executor: tuple[int, float] | None = None,
        log_path: str | None = None,
    ) -> BotRunRecord | None:
        """Write one state change into the bot's current run: a new row when a process starts (run by
        ``executor``, its pid and start time), the same row updated until it ends. None when the bot was
        removed meanwhile."""
        at = change.at or datetime.now(UTC)
        async with self._sessionmaker() as session, session.begin():
            bot = await session.scalar(select(Bot).where(Bot.name == name).with_for_update())
            if bot is None:
                return None
            run = await session.scalar(
                select(BotRun)
                .where(BotRun.bot_id == bot.id, BotRun.host == host)
                .order_by(BotRun.started_at.desc())
                .limit(1)
            )
            replaced = (
                run is not None
                and run.ended_at is None
                and run.pid is not None
                and change.pid is not None
                and run.pid != change.pid
            )
            if replaced and run is not None:
                run.status, run.ended_at, run.reason = "exited", at, run.reason or "replaced by a new process"
            starts = change.state in LIVE and (run is None or run.ended_at is not None or replaced)
            if run is None or starts:
                run = BotRun(bot_id=bot.id, host=host, started_at=at, log_path=log_path)
                run.executor_pid, run.executor_started = executor or (None, None)
                session.add(run)
            _update(run, change, at)
            await session.flush()
            await session.refresh(run)
            return _run(run, name)

    async def close_runs(self, run_ids: Iterable[uuid.UUID], reason: str) -> int:
        """End runs whose process is gone (an executor that crashed), keeping why; return how many."""
        ids = list(run_ids)
        if not ids:
            return 0
        now = datetime.now(UTC)
        async with self._sessionmaker() as session, session.begin():
            runs = list(
                await session.scalars(
                    select(BotRun).where(BotRun.id.in_(ids), BotRun.ended_at.is_(None)).with_for_update()
                )
            )
            for run in runs:
                run.status, run.reason, run.ended_at = "exited", reason, now
            return len(runs)

    async def _row(self, session: AsyncSession, name: str, *, lock: bool = False) -> Bot:
        check_bot_name(name)
        query = select(Bot).where(Bot.name == name)
        row = await session.scalar(query.with_for_update() if lock else query)
        if row is None:
            known = list(await session.scalars(select(Bot.name).order_by(Bot.name)))
            listed = ", ".join(known) if known else "none yet (register one with `kommandant bots add`)"
            raise NotFoundError(f"There is no bot called {name!r}. Known bots: {listed}.")
        return row


def _update(run: BotRun, change: RunChange, at: datetime) -> None:
    run.status = change.state
    run.pid = change.pid if change.pid is not None else run.pid
    run.create_time = change.create_time if change.create_time is not None else run.create_time
    run.restarts = change.restarts
    run.peak_rss = max(run.peak_rss or 0, change.peak_rss)
    run.cpu_seconds = max(run.cpu_seconds or 0.0, change.cpu_seconds)
    if change.exit_code is not None:
        run.exit_code = change.exit_code
    if change.signal is not None:
        run.signal = change.signal
    if change.reason:
        run.reason = change.reason
    if change.state in ENDED:
        run.ended_at = run.ended_at or at
    run.updated_at = at
