"""The bots agent: the bot executor of one host. It serves the ``bots_*`` tools from the bus, runs the
registered bots in a ``Supervisor``, writes every state change into Postgres and publishes it, and on
start reconciles Postgres with reality (stale runs closed, leftovers of a crashed executor stopped,
bots that should run started again).

Distributed: each executor has a name (``settings.bots_host``, the host name by default). A bot is
pinned to the executor that registered or first started it. Calls reach any executor on the shared
``bots`` queue; one for a bot pinned elsewhere is forwarded to that executor's own queue
(``bots@<host>``), which every executor also serves when the bus is RabbitMQ.
"""

from __future__ import annotations

import asyncio
import logging
import os
from contextvars import ContextVar
from typing import Any, TypeVar

import psutil
from pydantic import BaseModel

from agents.base import Agent, CallContext
from agents.bots.manifests import ManifestError, sync_folder
from agents.bots.output import mask
from agents.bots.supervisor import (
    BotSpec,
    BotStartError,
    Snapshot,
    Supervisor,
    Transition,
    kill_leftover,
    log_path,
)
from agents.errors import AgentError
from agents.services import Services
from agents.worker import AgentWorker
from bus import BusError, Serving, ToolCall, ToolResult
from storage.bots import LIVE, BotConfig, BotRecord, BotRegistry, BotRunRecord, RunChange, check_bot_name
from storage.errors import NotFoundError, StorageError
from tools import ToolDefinition
from tools.builtin import bots
from tools.builtin.bots import (
    BotActionResult,
    BotInfo,
    BotList,
    BotLogs,
    BotLogsInput,
    BotNameInput,
    BotsListInput,
    BotStatusInput,
    BotStatusResult,
    duration_text,
)
from tools.builtin.system import CallDescription, DescribeInput

log = logging.getLogger(__name__)
Output = TypeVar("Output", bound=BaseModel)

STATE_TOPIC = "bots.state"
"""Every state change of every bot is published under this topic."""
STALE_REASON = "executor restarted"

_FORWARDED: ContextVar[bool] = ContextVar("bots_call_forwarded", default=False)
"""True while serving a call that arrived on this executor's own queue: it is never forwarded again."""


def state_topic(channel: str) -> str:
    """Topic of the state changes a person should hear of (a bot ended, failed, was killed for a limit,
    restarts), for the channel that started the bot: front doors subscribe to ``bots.state.<channel>``."""
    return f"{STATE_TOPIC}.{channel}"


def executor_queue(host: str) -> str:
    """The agent queue of the executor named ``host``: calls for bots pinned to it are forwarded there."""
    return f"{bots.AGENT}@{host}"


def bot_spec(config: BotConfig) -> BotSpec:
    """What the supervisor runs for a registered bot."""
    return BotSpec(
        name=config.name,
        command=config.command,
        cwd=config.cwd,
        env=config.env,
        memory_mb=config.memory_mb,
        cpu_seconds=config.cpu_seconds,
        cpu_percent=config.cpu_percent,
        restart=config.restart,
        max_restarts=config.max_restarts,
        secrets=config.secret_values,
    )


def notice(transition: Transition) -> str | None:
    """The sentence for the person who started the bot, when this change is one they should hear of:
    the bot ended on its own, failed (a limit kill, a crash, giving up) or restarts by itself."""
    name, reason = transition.name, transition.reason or "no reason given"
    if transition.state == "failed":
        return f"The {name} bot failed: {reason}."
    if transition.state == "exited":
        return f"The {name} bot stopped: {reason}."
    if transition.state == "starting" and transition.restarts > 0:
        return f"The {name} bot is restarting ({reason})."
    return None


def held_elsewhere(run: BotRunRecord | None) -> int | None:
    """The pid of another executor process, still alive, whose run of a bot has not ended (a second
    Kommandant on this host, e.g. a one-shot `kommandant ask` beside `kommandant up`); else None."""
    if run is None or run.ended_at is not None or run.executor_pid in (None, os.getpid()):
        return None
    assert run.executor_pid is not None
    try:
        started = psutil.Process(run.executor_pid).create_time()
    except psutil.NoSuchProcess:
        return None
    same = run.executor_started is not None and abs(started - run.executor_started) < 0.05
    return run.executor_pid if same else None


def bot_info(record: BotRecord, snapshot: Snapshot | None = None) -> BotInfo:
    """A bot as the tools show it: live figures from the supervisor when it runs here, else what its
    newest run in Postgres says."""
    if snapshot is not None:
        live = snapshot.state == "running"
        return BotInfo(
            name=record.name,
            status=snapshot.state,
            pid=snapshot.pid,
            restarts=snapshot.restarts,
            started_at=snapshot.started_at,
            uptime=snapshot.uptime,
            rss=snapshot.rss if live else None,
            cpu_percent=snapshot.cpu_percent if live else None,
            cpu_seconds=snapshot.cpu_seconds,
            reason=snapshot.reason,
            host=record.host,
        )
    run = record.last_run
    if run is None:
        return BotInfo(name=record.name, status="registered", host=record.host)
    return BotInfo(
        name=record.name,
        status=run.status,
        pid=run.pid if run.status in LIVE else None,
        restarts=run.restarts,
        started_at=run.started_at,
        cpu_seconds=run.cpu_seconds,
        reason=run.reason,
        host=record.host,
    )


def stop_words(bot: BotInfo) -> str:
    """A stop in words for an approval card: which process ends, or that none runs."""
    if bot.status not in LIVE:
        return f"stop the bot {bot.name}, which is not running ({bot.status}): nothing would end"
    details = [f"pid {bot.pid}"] if bot.pid else []
    if bot.uptime is not None:
        details.append(f"running {duration_text(bot.uptime)}")
    return f"stop the bot {bot.name}" + (f" ({', '.join(details)})" if details else "")


class BotsAgent(Agent):
    name = bots.AGENT
    description = "Runs registered bots as supervised processes with limits, restarts and logs."

    def __init__(self, services: Services) -> None:
        super().__init__(services)
        settings = services.settings
        self.host = settings.bots_host
        self.registry = BotRegistry(services.database.sessionmaker)
        self.supervisor = Supervisor(settings.bots_log_dir, self._on_transition, grace=settings.bots_grace)
        self._starters: dict[str, tuple[str | None, str | None, str | None]] = {}
        self._own_queue: Serving | None = None
        self._closing = False
        self._ready = asyncio.Event()
        self._executor = (os.getpid(), psutil.Process().create_time())
        """Set once the manifests are loaded and reconcile is done: calls wait for it."""
        self.register(bots.LIST, self.list_bots)
        self.register(bots.START, self.start_bot)
        self.register(bots.STOP, self.stop_bot)
        self.register(bots.RESTART, self.restart_bot)
        self.register(bots.STATUS, self.status)
        self.register(bots.LOGS, self.logs)
        self.register(bots.DESCRIBE, self.describe)

    # --- lifecycle ---

    async def start(self) -> None:
        """Serve this executor's own queue (RabbitMQ), load the manifests, reconcile; calls that came
        meanwhile wait until it is done."""
        try:
            await self._start()
        finally:
            self._ready.set()

    async def _start(self) -> None:
        settings = self.services.settings
        await asyncio.to_thread(settings.bots_log_dir.mkdir, parents=True, exist_ok=True)
        if not settings.embedded:
            dispatcher = AgentWorker(self)

            async def serve_forwarded(call: ToolCall) -> ToolResult:
                _FORWARDED.set(True)  # this handler's own context: the flag ends with the call
                return await dispatcher.dispatch(call)

            self._own_queue = await self.services.bus.serve(executor_queue(self.host), serve_forwarded)
        try:
            await sync_folder(
                self.registry,
                self.services.audit,
                settings.bots_manifest_dir,
                host=self.host,
                actor=self.name,
            )
        except (ManifestError, StorageError) as err:  # the registry stays as it was; the log says why
            log.warning("bot manifests in %s were not loaded: %s", settings.bots_manifest_dir, err)
        await self.reconcile()

    async def stop(self) -> None:
        """Stop serving the own queue and every bot here; their desired state stays, so they come back
        when the executor starts again."""
        self._closing = True
        if self._own_queue is not None:
            await self._own_queue.stop()
            self._own_queue = None
        await self.supervisor.close()

    async def reconcile(self) -> None:
        """Close the runs of this executor that no process here belongs to (stopping what a crashed
        executor left running, found by pid and start time), then start the bots that should run."""
        here = {s.name for s in self.supervisor.all() if s.state in LIVE}
        open_runs = await self.registry.open_runs(self.host)
        held = {run.bot for run in open_runs if held_elsewhere(run) is not None}
        if held:
            log.warning("bots run by another live executor on %s are left to it: %s", self.host, sorted(held))
        stale = [run for run in open_runs if run.bot not in here | held]
        grace = self.services.settings.bots_grace

        async def close(run_id: Any, pid: int | None, started: float | None) -> None:
            killed = False
            if pid is not None and started is not None:
                killed = await asyncio.to_thread(kill_leftover, pid, started, grace=grace)
            reason = STALE_REASON + ("; its leftover processes were stopped" if killed else "")
            await self.registry.close_runs([run_id], reason)

        await asyncio.gather(*(close(run.id, run.pid, run.create_time) for run in stale))
        for record in await self.registry.should_run(self.host):
            if record.name in here | held:
                continue
            self._starters[record.name] = (record.started_by, record.started_channel, record.started_thread)
            try:
                await self.supervisor.start(bot_spec(record.config))
            except (BotStartError, ValueError) as err:
                log.warning("bot %s did not start again: %s", record.name, err)

    # --- tools ---

    async def list_bots(self, args: BotsListInput, ctx: CallContext) -> BotList:
        await self._ready.wait()
        return BotList(bots=[self._info(record) for record in await self.registry.all()])

    async def status(self, args: BotStatusInput, ctx: CallContext) -> BotStatusResult:
        if args.name is None:
            await self._ready.wait()
            return BotStatusResult(bots=[self._info(record) for record in await self.registry.all()])
        found = await self._served_here(bots.STATUS, args.name, args, ctx, BotStatusResult)
        return found if isinstance(found, BotStatusResult) else BotStatusResult(bots=[self._info(found)])

    async def start_bot(self, args: BotNameInput, ctx: CallContext) -> BotActionResult:
        found = await self._served_here(bots.START, args.name, args, ctx, BotActionResult)
        if isinstance(found, BotActionResult):
            return found
        current = self.supervisor.status(found.name)
        record = await self._want_running(found.name, ctx)
        if current is not None and current.state in LIVE:
            return BotActionResult(action="start", bot=bot_info(record, current), changed=False)
        snapshot = await self._run(record, restart=False)
        await self._audit("bot_started", record.name, ctx)
        return BotActionResult(action="start", bot=bot_info(record, snapshot))

    async def stop_bot(self, args: BotNameInput, ctx: CallContext) -> BotActionResult:
        found = await self._served_here(bots.STOP, args.name, args, ctx, BotActionResult)
        if isinstance(found, BotActionResult):
            return found
        record = await self.registry.want(found.name, "stopped", host=self.host)
        current = self.supervisor.status(record.name)
        if current is None or current.state not in LIVE:
            return BotActionResult(action="stop", bot=self._info(record), changed=False)
        snapshot = await self.supervisor.stop(record.name, reason=f"stopped by {ctx.user}")
        await self._audit("bot_stopped", record.name, ctx)
        return BotActionResult(action="stop", bot=bot_info(record, snapshot))

    async def restart_bot(self, args: BotNameInput, ctx: CallContext) -> BotActionResult:
        found = await self._served_here(bots.RESTART, args.name, args, ctx, BotActionResult)
        if isinstance(found, BotActionResult):
            return found
        record = await self._want_running(found.name, ctx)
        snapshot = await self._run(record, restart=True)
        await self._audit("bot_restarted", record.name, ctx)
        return BotActionResult(action="restart", bot=bot_info(record, snapshot))

    async def logs(self, args: BotLogsInput, ctx: CallContext) -> BotLogs:
        found = await self._served_here(bots.LOGS, args.name, args, ctx, BotLogs)
        if isinstance(found, BotLogs):
            return found
        lines, truncated = await asyncio.to_thread(self.supervisor.logs, found.name, args.lines)
        secrets = sorted(found.config.secret_values, key=len, reverse=True)
        return BotLogs(name=found.name, lines=[mask(line, secrets) for line in lines], truncated=truncated)

    async def describe(self, args: DescribeInput, ctx: CallContext) -> CallDescription:
        """What a stop would do, from the bot's status as the status tool reads it (forwarded to the
        executor the bot is pinned to): "stop the bot crawler (pid 1234, running 3 h)"."""
        if args.tool != bots.STOP.name:
            return CallDescription(text="")
        named = bots.STOP.validate_arguments(args.arguments)
        assert isinstance(named, BotNameInput)
        try:
            status = await self.status(BotStatusInput(name=named.name), ctx)
        except NotFoundError:  # the stop would fail the same way
            return CallDescription(text=f"stop the bot {named.name} (no bot of that name is registered)")
        return CallDescription(text=stop_words(status.bots[0]))

    # --- helpers ---

    async def _served_here(
        self, tool: ToolDefinition, name: str, args: BaseModel, ctx: CallContext, output: type[Output]
    ) -> BotRecord | Output:
        """The bot's record when this executor serves the call, or the result of the executor the bot is
        pinned to. A change is refused while another live executor process on this host runs the bot."""
        await self._ready.wait()
        try:
            check_bot_name(name)
        except StorageError as err:
            raise AgentError(str(err)) from err
        record = await self.registry.get(name)
        forwarded = await self._forward(record, tool, args, ctx)
        if forwarded is not None:
            if not isinstance(forwarded, output):
                raise AgentError(f"The executor on {record.host} answered {tool.name} with something else.")
            return forwarded
        if tool.risk != "read":
            self._not_held_elsewhere(record)
        return record

    async def _want_running(self, name: str, ctx: CallContext) -> BotRecord:
        """Mark the bot as one that should run, pinned here, started by this person (who hears of it)."""
        record = await self.registry.want(
            name, "running", host=self.host, user=ctx.user, channel=ctx.channel, thread=ctx.thread
        )
        self._starters[name] = (ctx.user, ctx.channel, ctx.thread)
        return record

    def _not_held_elsewhere(self, record: BotRecord) -> None:
        pid = held_elsewhere(record.last_run)
        if pid is not None and self.supervisor.status(record.name) is None:
            raise AgentError(
                f"The {record.name} bot is run by another Kommandant process on {self.host} (pid {pid}, "
                "e.g. `kommandant up`): ask that one."
            )

    def _info(self, record: BotRecord) -> BotInfo:
        here = record.host in (None, self.host)
        return bot_info(record, self.supervisor.status(record.name) if here else None)

    async def _run(self, record: BotRecord, *, restart: bool) -> Snapshot:
        spec = bot_spec(record.config)
        try:
            return await (self.supervisor.restart(spec) if restart else self.supervisor.start(spec))
        except BotStartError as err:
            await self.registry.want(record.name, "stopped", host=self.host)
            raise AgentError(f"The {record.name} bot did not start: {err}") from err

    async def _forward(
        self, record: BotRecord, tool: ToolDefinition, args: BaseModel, ctx: CallContext
    ) -> BaseModel | None:
        """The result from the executor the bot is pinned to, when that is another one; else None."""
        if record.host in (None, self.host) or _FORWARDED.get():
            return None
        if self.services.settings.embedded:
            raise AgentError(
                f"The {record.name} bot is pinned to the executor on {record.host}, and this Kommandant "
                f"runs in embedded mode with its only executor on {self.host}."
            )
        call = ToolCall.create(
            tool.name,
            args.model_dump(mode="json", exclude_none=True),
            timeout=max(1.0, self.services.settings.call_timeout - 1.0),
            user=ctx.user,
            channel=ctx.channel,
            thread=ctx.thread,
            role=ctx.role,
            idempotency_key=f"{ctx.call_id}@{record.host}",
            side_effects=tool.risk != "read",
            repeatable=tool.repeatable,
        )
        try:
            result = await self.services.bus.call(executor_queue(record.host or ""), call)
        except BusError as err:
            raise AgentError(
                f"The {record.name} bot is pinned to the executor on {record.host}, which did not answer; "
                "is its `kommandant worker bots` running?"
            ) from err
        if result.is_error or result.result.structuredContent is None:
            raise AgentError(result.text)
        return tool.validate_output(result.result.structuredContent)

    async def _audit(self, kind: str, name: str, ctx: CallContext) -> None:
        await self.services.audit.append(
            kind,
            actor=ctx.user,
            channel=ctx.channel,
            thread_id=ctx.thread,
            data={"bot": name, "executor": self.host},
        )

    async def _on_transition(self, transition: Transition) -> None:
        """Write the change into the bot's run, publish it, and tell the person who started the bot of
        the changes they should hear of."""
        path = str(log_path(self.services.settings.bots_log_dir, transition.name))
        change = RunChange(
            state=transition.state,
            pid=transition.pid,
            create_time=transition.create_time,
            exit_code=transition.exit_code,
            signal=transition.signal,
            reason=transition.reason,
            restarts=transition.restarts,
            peak_rss=transition.peak_rss,
            cpu_seconds=transition.cpu_seconds,
            at=transition.at,
        )
        await self.registry.record(
            transition.name, change, host=self.host, executor=self._executor, log_path=path
        )
        user, channel, thread = self._starters.get(transition.name, (None, None, None))
        text = None if self._closing else notice(transition)
        payload = {
            "bot": transition.name,
            "state": transition.state,
            "reason": transition.reason,
            "pid": transition.pid,
            "exit_code": transition.exit_code,
            "signal": transition.signal,
            "restarts": transition.restarts,
            "peak_rss": transition.peak_rss,
            "cpu_seconds": transition.cpu_seconds,
            "at": transition.at.isoformat(),
            "host": self.host,
            "user": user,
            "channel": channel,
            "thread": thread,
            "text": text,
        }
        await self.services.bus.publish(STATE_TOPIC, payload)
        if text is None or channel is None:
            return
        await self.services.bus.publish(state_topic(channel), payload)
        await self.services.audit.append(
            "bot_state",
            actor=self.name,
            owner=user,
            channel=channel,
            thread_id=thread,
            data={"bot": transition.name, "state": transition.state, "summary": text},
        )
