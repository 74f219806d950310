"""The bot supervisor: runs bots as processes with limits, restarts and logs, and reports every change.

One supervisor per executor (Linux only). Per bot one task runs its lifecycle (start, wait, stop,
restart); one watcher task samples every running bot's process tree each ``watch_interval`` and kills
the ones over a limit; one delivery task hands each ``Transition`` to ``on_transition`` in order, so a
slow or failing callback delays its news but never the supervision.

Limits, as Linux enforces them:

- ``memory_mb``: the RSS of the whole tree (MiB), watched. Over it, the tree is killed at once
  (SIGKILL, no grace: it would keep growing while shutting down). No RLIMIT_AS cap: it limits
  virtual memory, which runtimes such as the JVM, Go and V8 reserve by the gigabyte and never touch,
  so it would break ordinary bots; RLIMIT_RSS does nothing on Linux.
- ``cpu_seconds``: RLIMIT_CPU on the bot's process (SIGXCPU at the limit, SIGKILL one second later);
  each child inherits it for its own CPU time. The run ends "killed: cpu limit".
- ``cpu_percent``: the tree's CPU use over the last ``cpu_window`` seconds (100 = one core), watched
  once a full window has passed; over it, killed at once like the memory limit.

A limit kill counts as a failure: ``on-failure`` restarts the bot (see ``agents.bots.policy``).

A bot gets a minimal environment (PATH, HOME, the locale; see ``process.INHERITED_ENV``) plus its own
``env``, stdin from /dev/null, and its own session and process group. Stopping it signals the group and
every descendant found with psutil (a grandchild that left the group too), and the executor reaps
whatever a bot leaves behind (see ``agents.bots.process`` on the child subreaper). Output is captured as
``agents.bots.output`` describes (bounded memory per bot, rotating files, ``[stderr] `` prefix).

Every transition of a bot, in order: ``starting`` -> ``running`` -> [``stopping``] -> ``stopped`` |
``exited`` | ``failed``; a restart goes ``exited`` (the run's end, with its reason) -> ``starting``
(reason "restart N of M in S s", held through the backoff) -> ``running``. A start that cannot exec
goes ``starting`` -> ``failed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from agents.bots.output import BotOutput, rotated_files, tail_files
from agents.bots.policy import (
    RESTART_POLICIES,
    Backoff,
    Ending,
    Restart,
    RestartPolicy,
    cpu_limit_hit,
    decide,
)
from agents.bots.process import (
    BotProcess,
    BotStartError,
    Usage,
    bot_env,
    exit_status,
    hold_subreaper,
    reap_adopted,
    release_subreaper,
    spawn,
)
from agents.bots.process import (
    kill_leftover as kill_leftover,  # re-exported: part of this module's interface
)

log = logging.getLogger(__name__)

BotRunState = Literal["starting", "running", "stopping", "stopped", "exited", "failed"]
ACTIVE: frozenset[BotRunState] = frozenset({"starting", "running", "stopping"})
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
MIB = 1024 * 1024
REAP_EVERY = 1.0
"""Seconds between sweeps for dead orphans of running bots."""


class BotNotLoadedError(LookupError):
    """No bot of that name was started in this supervisor."""


class BotAlreadyRunningError(BotStartError):
    """``start`` for a bot that is starting, running or stopping."""


def validate_name(name: str) -> str:
    """``name`` if it is 1 to 64 letters, digits, '-' or '_'; ``ValueError`` otherwise."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"A bot name is 1 to 64 letters, digits, '-' or '_', not {name!r}.")
    return name


def log_path(log_dir: Path, name: str) -> Path:
    """The bot's rotating log file (backups beside it as ``<name>.log.1`` ...)."""
    return log_dir / f"{validate_name(name)}.log"


def _positive(value: float | None, what: str) -> None:
    if value is not None and not value > 0:
        raise ValueError(f"{what} must be positive, not {value!r}.")


@dataclass(frozen=True, slots=True)
class BotSpec:
    """What to run and how; validated when built (``ValueError`` with a clear sentence)."""

    name: str
    """Letters, digits, '-' and '_', 1 to 64 of them."""
    command: tuple[str, ...]
    """The argument list; it is executed directly, never through a shell."""
    cwd: str | None = None
    env: Mapping[str, str] = field(default_factory=dict, hash=False)
    """Added to the minimal inherited environment (PATH, HOME, LANG, ...)."""
    memory_mb: int | None = None
    """Most RSS of the whole process tree, in MiB; watched."""
    cpu_seconds: int | None = None
    """Most CPU seconds of the bot's process (RLIMIT_CPU)."""
    cpu_percent: float | None = None
    """Most CPU use of the tree over the watch window, 100 = one core; watched."""
    restart: RestartPolicy = "on-failure"
    max_restarts: int = 3
    secrets: tuple[str, ...] = ()
    """Values masked as '***' in the captured output."""

    def __post_init__(self) -> None:
        validate_name(self.name)
        command = tuple(self.command)
        if not command or not all(isinstance(arg, str) for arg in command) or not command[0]:
            raise ValueError("A bot's command is a non-empty list of strings, the program first.")
        if any("\0" in arg for arg in command):
            raise ValueError("A bot's command must not contain NUL characters.")
        env = dict(self.env)
        for key, value in env.items():
            if not isinstance(key, str) or not key or "=" in key or "\0" in key:
                raise ValueError(f"{key!r} is not a valid environment variable name.")
            if not isinstance(value, str) or "\0" in value:
                raise ValueError(f"The value of environment variable {key} must be text without NUL.")
        _positive(self.memory_mb, "memory_mb")
        _positive(self.cpu_seconds, "cpu_seconds")
        _positive(self.cpu_percent, "cpu_percent")
        if self.restart not in RESTART_POLICIES:
            raise ValueError(f"restart is one of {', '.join(RESTART_POLICIES)}, not {self.restart!r}.")
        if self.max_restarts < 0:
            raise ValueError("max_restarts must not be negative.")
        object.__setattr__(self, "command", command)
        object.__setattr__(self, "env", MappingProxyType(env))
        object.__setattr__(self, "secrets", tuple(self.secrets))


@dataclass(frozen=True, slots=True)
class Transition:
    """One state change of one bot, handed to ``on_transition`` in order."""

    name: str
    state: BotRunState
    pid: int | None
    create_time: float | None
    """psutil's create time of ``pid``: with the pid, it finds the process again after a crash."""
    exit_code: int | None
    signal: int | None
    """The signal that ended the run, if one did."""
    reason: str | None
    restarts: int
    """Restarts in the current streak."""
    peak_rss: int
    """Bytes, whole tree, this run."""
    cpu_seconds: float
    """User + system seconds, whole tree, this run."""
    at: datetime


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A bot as the status tool shows it."""

    name: str
    state: BotRunState
    pid: int | None
    started_at: datetime | None
    """When the current (or last) run started."""
    uptime: float | None
    """Seconds, while a process runs."""
    rss: int
    """Bytes now, whole tree."""
    cpu_percent: float
    cpu_seconds: float
    restarts: int
    reason: str | None
    """Why the last run ended."""


@dataclass(eq=False)
class _Bot:
    """A bot's bookkeeping inside the supervisor."""

    spec: BotSpec
    output: BotOutput
    state: BotRunState = "stopped"
    run: BotProcess | None = None
    pumps: list[asyncio.Task[None]] = field(default_factory=list)
    runner: asyncio.Task[None] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    stop_reason: str | None = None
    limit_reason: str | None = None
    started_at: datetime | None = None
    started: float = 0.0  # monotonic
    restarts: int = 0
    reason: str | None = None
    rss: int = 0
    peak_rss: int = 0
    cpu_seconds: float = 0.0
    cpu_percent: float = 0.0
    cpu_samples: deque[tuple[float, float]] = field(default_factory=deque)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def active(self) -> bool:
        return self.state in ACTIVE


class Supervisor:
    """Runs bots; see the module docstring. Use one per event loop and ``await close()`` at the end."""

    def __init__(
        self,
        log_dir: Path,
        on_transition: Callable[[Transition], Awaitable[None]],
        *,
        grace: float = 5.0,
        watch_interval: float = 0.25,
        stable_after: float = 60.0,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        log_lines: int = 1000,
        log_file_bytes: int = 5_000_000,
        log_file_backups: int = 3,
        cpu_window: float = 5.0,
        jitter: float = 0.2,
    ) -> None:
        if log_lines < 1 or log_file_bytes < 1 or log_file_backups < 0:
            raise ValueError("log_lines and log_file_bytes must be positive, log_file_backups not negative")
        _positive(watch_interval, "watch_interval")
        _positive(cpu_window, "cpu_window")
        self.log_dir = log_dir
        self.grace = grace
        self.watch_interval = watch_interval
        self.stable_after = stable_after
        self.cpu_window = cpu_window
        self.backoff = Backoff(backoff_base, backoff_max, jitter)
        self._on_transition = on_transition
        self._log_options = {"lines": log_lines, "file_bytes": log_file_bytes, "backups": log_file_backups}
        self._bots: dict[str, _Bot] = {}
        self._news: asyncio.Queue[Transition] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self._random = random.Random()

    # -- public ---------------------------------------------------------------------------------------

    async def start(self, spec: BotSpec) -> Snapshot:
        """Start ``spec``; returns once its process exists (state ``running``). ``BotStartError`` when
        it cannot be executed (no such program, not executable, bad working folder) or already runs."""
        if self._closed:
            raise BotStartError("The bot executor is shutting down.")
        bot = self._bots.get(spec.name)
        if bot is None:
            output = BotOutput(log_path(self.log_dir, spec.name), **self._log_options)
            bot = self._bots.setdefault(spec.name, _Bot(spec, output))
        async with bot.lock:
            return await self._start(bot, spec)

    async def stop(self, name: str, *, reason: str = "stopped by request") -> Snapshot:
        """SIGTERM to the bot's process group and tree, SIGKILL after ``grace``; no restart afterwards.
        A bot that is not running is left as it is. ``BotNotLoadedError`` for an unknown name."""
        bot = self._bot(name)
        async with bot.lock:
            await self._stop(bot, reason)
            return self._snapshot(bot)

    async def restart(self, spec: BotSpec) -> Snapshot:
        """Stop the bot if it runs, then start ``spec`` with a fresh restart count."""
        if spec.name not in self._bots:
            return await self.start(spec)
        bot = self._bots[spec.name]
        async with bot.lock:
            await self._stop(bot, "restarted by request")
            return await self._start(bot, spec)

    def status(self, name: str) -> Snapshot | None:
        """The bot now, or None if it was never started here."""
        bot = self._bots.get(validate_name(name))
        return None if bot is None else self._snapshot(bot)

    async def forget(self, name: str) -> None:
        """Drop a bot that is not running from memory (its log file stays), e.g. when it is removed."""
        bot = self._bots.get(validate_name(name))
        if bot is None:
            return
        if bot.active:
            raise BotAlreadyRunningError(f"The bot {name} is {bot.state}; stop it first.")
        del self._bots[name]
        await bot.output.close()

    def all(self) -> list[Snapshot]:
        """Every bot started here, by name."""
        return [self._snapshot(bot) for _, bot in sorted(self._bots.items())]

    def logs(self, name: str, lines: int) -> tuple[list[str], bool]:
        """The last ``lines`` lines (oldest first) and whether older ones exist: from memory, or from the
        rotating file for a bot not started in this supervisor."""
        if lines < 1:
            raise ValueError("Ask for at least one line.")
        bot = self._bots.get(validate_name(name))
        if bot is not None:
            return bot.output.tail(lines)
        return tail_files(rotated_files(log_path(self.log_dir, name), self._log_options["backups"]), lines)

    async def close(self) -> None:
        """Stop every bot (each with its grace), deliver the remaining transitions, write the logs."""
        if self._closed:
            return
        self._closed = True
        active = [bot for bot in self._bots.values() if bot.active]
        await asyncio.gather(*(self.stop(bot.name, reason="executor shut down") for bot in active))
        if self._tasks:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    await self._news.join()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            release_subreaper()
        await asyncio.gather(*(bot.output.close() for bot in self._bots.values()))

    # -- lifecycle ------------------------------------------------------------------------------------

    def _bot(self, name: str) -> _Bot:
        bot = self._bots.get(validate_name(name))
        if bot is None:
            raise BotNotLoadedError(f"No bot named {name!r} was started by this executor.")
        return bot

    def _ensure_tasks(self) -> None:
        if not self._tasks:
            hold_subreaper()
            self._tasks = [
                asyncio.create_task(self._watch(), name="bots-watch"),
                asyncio.create_task(self._deliver(), name="bots-transitions"),
            ]

    async def _start(self, bot: _Bot, spec: BotSpec) -> Snapshot:
        if bot.active:
            raise BotAlreadyRunningError(f"The bot {spec.name} is already {bot.state}.")
        self._ensure_tasks()
        bot.spec, bot.restarts, bot.stop_reason = spec, 0, None
        self._emit(bot, "starting")
        await self._launch(bot)
        bot.runner = asyncio.create_task(self._supervise(bot), name=f"bot-{bot.name}")
        return self._snapshot(bot)

    async def _launch(self, bot: _Bot) -> None:
        """Spawn a run; on failure the bot is ``failed`` and ``BotStartError`` propagates."""
        spec = bot.spec
        bot.limit_reason = None
        bot.wake.clear()  # a stop that comes meanwhile has set stop_reason, which _run_to_end reads
        try:
            process = await spawn(
                spec.command, cwd=spec.cwd, env=bot_env(spec.env), cpu_seconds=spec.cpu_seconds
            )
        except BotStartError as err:
            bot.reason = str(err)
            self._emit(bot, "failed", reason=bot.reason)
            raise
        bot.run = run = BotProcess(process)
        bot.output.secrets = spec.secrets
        assert process.stdout is not None and process.stderr is not None
        bot.pumps = [
            asyncio.create_task(bot.output.pump(process.stdout), name=f"bot-{bot.name}-out"),
            asyncio.create_task(bot.output.pump(process.stderr, stderr=True), name=f"bot-{bot.name}-err"),
        ]
        bot.started_at, bot.started = datetime.now(UTC), time.monotonic()
        bot.peak_rss = bot.rss = 0
        bot.cpu_seconds = bot.cpu_percent = 0.0
        bot.cpu_samples.clear()
        self._measure(bot, run, bot.started)
        self._emit(bot, "running")

    async def _stop(self, bot: _Bot, reason: str) -> None:
        if not bot.active:
            return
        if bot.stop_reason is None:
            bot.stop_reason = reason
            if bot.state == "running":
                self._emit(bot, "stopping", reason=reason)
            bot.wake.set()
        if bot.runner is not None:
            await asyncio.shield(bot.runner)

    async def _supervise(self, bot: _Bot) -> None:
        """A bot's lifecycle after its first start: wait for each run's end, restart or rest."""
        try:
            while True:
                ending, uptime = await self._run_to_end(bot)
                decision = decide(
                    ending,
                    policy=bot.spec.restart,
                    restarts=bot.restarts,
                    max_restarts=bot.spec.max_restarts,
                    uptime=uptime,
                    stable_after=self.stable_after,
                    backoff=self.backoff,
                    rand=self._random.random(),
                )
                bot.reason = ending.reason
                if not isinstance(decision, Restart):
                    bot.restarts, bot.reason = decision.restarts, decision.reason
                    self._end_run(bot, decision.state, ending, decision.reason)
                    return
                self._end_run(bot, "exited", ending, ending.reason)
                bot.restarts = decision.restarts
                note = f"restart {decision.restarts} of {bot.spec.max_restarts} in {decision.delay:.2f} s"
                self._emit(bot, "starting", reason=note)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(bot.wake.wait(), decision.delay)
                if bot.stop_reason is not None:
                    self._emit(bot, "stopped", reason=bot.stop_reason)
                    bot.reason = bot.stop_reason
                    return
                with contextlib.suppress(BotStartError):  # _launch reported it as "failed"
                    await self._launch(bot)
                    continue
                return
        except Exception:
            log.exception("supervising bot %s failed", bot.name)
            if bot.run is not None and bot.run.running:
                bot.run.kill()
                await exit_status(bot.run.process)
            bot.reason = "the supervisor failed; see the executor's log"
            self._emit(bot, "failed", reason=bot.reason)

    async def _run_to_end(self, bot: _Bot) -> tuple[Ending, float]:
        """Wait until the current run has ended and left nothing behind; how it ended and how long."""
        run = bot.run
        assert run is not None
        if bot.stop_reason is None:
            exited = asyncio.ensure_future(exit_status(run.process))
            woken = asyncio.ensure_future(bot.wake.wait())
            await asyncio.wait({exited, woken}, return_when=asyncio.FIRST_COMPLETED)
            exited.cancel()
            woken.cancel()
        if bot.stop_reason is not None and run.running:
            await run.stop(self.grace)
        returncode = await exit_status(run.process)
        uptime = time.monotonic() - bot.started
        await run.clean_up(self.grace)
        await self._drain(bot)
        limit = bot.limit_reason
        if limit is None and bot.stop_reason is None:
            signal_number = -returncode if returncode < 0 else None
            if cpu_limit_hit(signal_number, cpu_used=bot.cpu_seconds, cpu_limit=bot.spec.cpu_seconds):
                limit = "killed: cpu limit"
        return Ending.from_returncode(returncode, limit=limit, requested=bot.stop_reason), uptime

    async def _drain(self, bot: _Bot) -> None:
        """Let the pumps read what the run wrote; a pipe some stranger still holds is not waited for."""
        if not bot.pumps:
            return
        done, pending = await asyncio.wait(bot.pumps, timeout=2.0)
        for task in pending:
            task.cancel()
        for task in done:
            if task.exception() is not None:
                log.warning("reading the output of bot %s failed", bot.name, exc_info=task.exception())
        await asyncio.gather(*pending, return_exceptions=True)
        bot.pumps = []

    # -- watching -------------------------------------------------------------------------------------

    async def _watch(self) -> None:
        """Every ``watch_interval``: sample each running bot and enforce its limits. About once a
        second: reap the orphans of running bots that came to the executor and died (a scan of every
        executor thread's children, too dear for every tick; stops and run ends reap at once)."""
        reaped_at = time.monotonic()
        while True:
            await asyncio.sleep(self.watch_interval)
            now = time.monotonic()
            runs: list[BotProcess] = []
            for bot in list(self._bots.values()):
                run = bot.run
                if run is None or bot.state != "running" or not run.running:
                    continue
                runs.append(run)
                try:
                    self._measure(bot, run, now)
                    self._enforce(bot, run)
                except Exception:
                    log.warning("watching bot %s failed", bot.name, exc_info=True)
            if runs and now - reaped_at >= REAP_EVERY:
                reaped_at = now
                try:
                    reap_adopted([run.pid for run in runs], [pid for run in runs for pid in run.seen])
                except OSError:
                    log.warning("reaping adopted processes failed", exc_info=True)

    def _measure(self, bot: _Bot, run: BotProcess, now: float) -> None:
        usage: Usage = run.sample()
        bot.rss = usage.rss
        bot.peak_rss = max(bot.peak_rss, usage.rss)
        bot.cpu_seconds = usage.cpu
        samples = bot.cpu_samples
        samples.append((now, usage.cpu))
        while len(samples) > 2 and samples[1][0] <= now - self.cpu_window:
            samples.popleft()
        first_at, first_cpu = samples[0]
        if now > first_at:
            bot.cpu_percent = 100 * (usage.cpu - first_cpu) / (now - first_at)
        if bot.restarts and now - bot.started >= self.stable_after:
            bot.restarts = 0  # a stable run ends the streak

    def _enforce(self, bot: _Bot, run: BotProcess) -> None:
        spec = bot.spec
        if spec.memory_mb is not None and bot.rss > spec.memory_mb * MIB:
            reason = f"killed: memory limit ({bot.rss / MIB:.0f} MB > {spec.memory_mb} MB)"
            self._kill_for_limit(bot, run, reason)
            return
        samples = bot.cpu_samples
        full_window = samples[-1][0] - samples[0][0] >= self.cpu_window * 0.95
        if spec.cpu_percent is not None and full_window and bot.cpu_percent > spec.cpu_percent:
            reason = f"killed: cpu limit ({bot.cpu_percent:.0f}% > {spec.cpu_percent:g}%)"
            self._kill_for_limit(bot, run, reason)

    def _kill_for_limit(self, bot: _Bot, run: BotProcess, reason: str) -> None:
        log.info("bot %s: %s", bot.name, reason)
        bot.limit_reason = reason
        self._emit(bot, "stopping", reason=reason)
        run.kill()

    # -- transitions ----------------------------------------------------------------------------------

    def _end_run(self, bot: _Bot, state: BotRunState, ending: Ending, reason: str) -> None:
        self._emit(bot, state, reason=reason, exit_code=ending.exit_code, signal=ending.signal)
        bot.run = None
        bot.rss, bot.cpu_percent = 0, 0.0

    def _emit(
        self,
        bot: _Bot,
        state: BotRunState,
        *,
        reason: str | None = None,
        exit_code: int | None = None,
        signal: int | None = None,
    ) -> None:
        bot.state = state
        run = bot.run
        self._news.put_nowait(
            Transition(
                name=bot.name,
                state=state,
                pid=None if run is None else run.pid,
                create_time=None if run is None else run.create_time,
                exit_code=exit_code,
                signal=signal,
                reason=reason,
                restarts=bot.restarts,
                peak_rss=bot.peak_rss if run is not None else 0,
                cpu_seconds=bot.cpu_seconds if run is not None else 0.0,
                at=datetime.now(UTC),
            )
        )

    async def _deliver(self) -> None:
        while True:
            transition = await self._news.get()
            try:
                await self._on_transition(transition)
            except Exception:
                log.exception("on_transition failed for bot %s (%s)", transition.name, transition.state)
            finally:
                self._news.task_done()

    def _snapshot(self, bot: _Bot) -> Snapshot:
        run = bot.run if bot.state in ("running", "stopping") else None
        live = run is not None  # until the run's end is handled, even if the process just exited
        return Snapshot(
            name=bot.name,
            state=bot.state,
            pid=run.pid if run is not None else None,
            started_at=bot.started_at,
            uptime=time.monotonic() - bot.started if live else None,
            rss=bot.rss if live else 0,
            cpu_percent=round(bot.cpu_percent, 1) if live else 0.0,
            cpu_seconds=bot.cpu_seconds,
            restarts=bot.restarts,
            reason=bot.reason,
        )
