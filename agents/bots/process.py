"""Bot processes on Linux: spawn one in a session of its own, measure its whole tree, stop and reap it.

Linux only: the tree is read from ``/proc`` (a few small files per process, cheap enough to sample 20
bots four times a second), CPU time is capped with ``prlimit`` and orphans are adopted through
``PR_SET_CHILD_SUBREAPER``.

Why the executor becomes a child subreaper while it supervises: when a bot's process dies before its
children, the kernel hands those children to the nearest subreaper, else to PID 1. Not every PID 1
reaps (in a container the executor may be PID 1 itself), and an orphan handed to PID 1 is out of the
supervisor's sight. As subreaper the executor receives them, so it can kill what outlived a bot and
reap the remains: no orphans, no zombies. It reaps only what belongs to a bot's session or was seen in
a bot's tree, never a child some other part of the process waits for. While the flag is on, any other
process that this process started and that daemonizes is adopted too, and left to its own devices.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import resource
import signal
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

INHERITED_ENV = ("PATH", "HOME", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ", "USER",
                 "LOGNAME", "TMPDIR")  # fmt: skip
"""What a bot inherits from the executor's environment; everything else comes from its own ``env``."""
READ_CHUNK = 64 * 1024
_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
_PR_SET_CHILD_SUBREAPER = 36
_POLL = 0.02
_CREATE_TIME_TOLERANCE = 0.05  # seconds: psutil's create_time is boot time + ticks, stable within a boot


class BotStartError(Exception):
    """A bot's process could not be started; the message says why in one sentence."""


@dataclass(frozen=True, slots=True)
class ProcStat:
    """The fields of ``/proc/<pid>/stat`` the supervisor needs."""

    state: str
    session: int
    threads: int
    start: int
    """Start time in clock ticks after boot: with the pid, it names one process for good."""
    cpu: float
    """User + system seconds of the process and of its children it has waited for."""
    rss: int
    """Resident bytes."""


def _read(path: str) -> bytes | None:
    # os.open/os.read rather than open(): the watcher reads hundreds of these small files a second.
    try:
        fd = os.open(path, os.O_RDONLY)
    except (FileNotFoundError, ProcessLookupError):
        return None
    try:
        data = chunk = os.read(fd, 4096)
        while len(chunk) == 4096:
            chunk = os.read(fd, 4096)
            data += chunk
        return data
    except ProcessLookupError:  # the process went away between open and read
        return None
    finally:
        os.close(fd)


def read_stat(pid: int) -> ProcStat | None:
    """The process's stat line, or None when it is gone."""
    raw = _read(f"/proc/{pid}/stat")
    if not raw:
        return None
    # The command name sits in parentheses and may hold spaces and parentheses: split after the last.
    fields = raw[raw.rindex(b")") + 2 :].split()
    ticks = sum(int(fields[n]) for n in (11, 12, 13, 14))  # utime stime cutime cstime
    return ProcStat(
        state=fields[0].decode(),
        session=int(fields[3]),
        threads=int(fields[17]),
        start=int(fields[19]),
        cpu=ticks / _TICKS,
        rss=int(fields[21]) * _PAGE,
    )


def _children_from_proc(pid: int, threads: int = 0) -> list[int]:
    if threads == 1:  # the usual case: one task, whose id is the pid
        tasks = [str(pid)]
    else:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except (FileNotFoundError, ProcessLookupError):
            return []
    found: list[int] = []
    for task in tasks:
        found.extend(int(child) for child in (_read(f"/proc/{pid}/task/{task}/children") or b"").split())
    return found


def _children_from_psutil(pid: int, threads: int = 0) -> list[int]:
    try:
        return [child.pid for child in psutil.Process(pid).children()]
    except psutil.NoSuchProcess:
        return []


# /proc/<pid>/task/<tid>/children needs CONFIG_PROC_CHILDREN (on in the usual kernels); psutil scans all
# of /proc for the same answer, which costs more the busier the machine is.
child_pids = (
    _children_from_proc if Path(f"/proc/self/task/{os.getpid()}/children").exists() else _children_from_psutil
)


def bot_env(extra: Mapping[str, str]) -> dict[str, str]:
    """A minimal environment: the locale, PATH and HOME of the executor, then the bot's own entries.
    The executor's other variables (its database URL, tokens) never reach a bot."""
    env = {key: os.environ[key] for key in INHERITED_ENV if key in os.environ}
    env.update(extra)
    return env


_subreaper_users = 0  # process-wide like the kernel flag it counts: supervisors share it


def hold_subreaper() -> None:
    """Make this process a child subreaper (see the module docstring) while any supervisor runs."""
    global _subreaper_users
    if _subreaper_users == 0:
        _set_subreaper(True)
    _subreaper_users += 1


def release_subreaper() -> None:
    """The last supervisor closing turns the subreaper flag off again."""
    global _subreaper_users
    _subreaper_users = max(0, _subreaper_users - 1)
    if _subreaper_users == 0:
        _set_subreaper(False)


def _set_subreaper(on: bool) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) != 0:
        log.warning("could not set PR_SET_CHILD_SUBREAPER: %s", os.strerror(ctypes.get_errno()))


def reap_adopted(sessions: Iterable[int], known: Iterable[int] = ()) -> int:
    """Reap this process's zombie children that belong to a bot: members of one of ``sessions`` other
    than the session leaders (asyncio waits for those), or pids in ``known``. Returns how many."""
    sessions, known = set(sessions), set(known)
    reaped = 0
    for pid in child_pids(os.getpid()):
        stat = read_stat(pid)
        if stat is None or stat.state != "Z" or pid in sessions:
            continue
        if stat.session in sessions or pid in known:
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    reaped += 1
    return reaped


def _start_error(command: Sequence[str], cwd: str | None, err: OSError) -> BotStartError:
    program = command[0]
    if cwd is not None and not Path(cwd).is_dir():
        return BotStartError(f"The working folder {cwd!r} does not exist or is not a folder.")
    if isinstance(err, FileNotFoundError):
        where = "" if "/" in program else " on PATH"
        return BotStartError(f"No program {program!r} was found{where}.")
    if isinstance(err, PermissionError):
        return BotStartError(f"{program!r} cannot be run: permission denied (is it executable?).")
    return BotStartError(f"{program!r} cannot be run: {err.strerror or err}.")


async def spawn(
    command: Sequence[str], *, cwd: str | None, env: Mapping[str, str], cpu_seconds: int | None
) -> asyncio.subprocess.Process:
    """Start ``command`` (an argument list, never a shell) in a new session with stdin from /dev/null and
    stdout and stderr piped. ``cpu_seconds`` becomes RLIMIT_CPU: soft at the limit (SIGXCPU), hard one
    second later (SIGKILL for a process that ignores SIGXCPU); with soft equal to hard Linux would send
    SIGKILL at once. It is set with prlimit right after exec (preexec_fn is unsafe in a process with
    threads): a process cannot fork in the microseconds between, and children inherit the limit, each
    counting its own CPU time."""
    try:
        process = await asyncio.create_subprocess_exec(
            *command,
            cwd=cwd,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            limit=READ_CHUNK,
        )
    except OSError as err:
        raise _start_error(command, cwd, err) from err
    if cpu_seconds is not None:
        try:
            resource.prlimit(process.pid, resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
        except OSError as err:
            os.killpg(process.pid, signal.SIGKILL)
            await exit_status(process)
            raise BotStartError(f"The CPU limit could not be set: {err.strerror or err}.") from err
    return process


async def exit_status(process: asyncio.subprocess.Process) -> int:
    """``process``'s return code once it has exited. Unlike ``Process.wait()`` on Python 3.11, this does
    not also wait for its pipes to close, which a descendant that outlives it can hold open for ever: a
    pidfd (Linux 5.3+) turns readable when the process exits; asyncio's child watcher still reaps it."""
    if process.returncode is None:
        loop = asyncio.get_running_loop()
        exited: asyncio.Future[None] = loop.create_future()

        def on_exit() -> None:
            if not exited.done():
                exited.set_result(None)

        try:
            pidfd = os.pidfd_open(process.pid)
        except ProcessLookupError:  # already reaped: the return code is on its way
            pass
        else:
            loop.add_reader(pidfd, on_exit)
            try:
                await exited
            finally:
                loop.remove_reader(pidfd)
                os.close(pidfd)
    # asyncio's watcher thread is reaping it this moment and offers nothing to wait on but the result.
    while process.returncode is None:  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    return process.returncode


def create_time(pid: int) -> float | None:
    """psutil's start time of ``pid`` (seconds since the epoch), None when it is gone."""
    try:
        return psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return None


@dataclass(frozen=True, slots=True)
class Usage:
    """One sample of a bot's whole process tree."""

    rss: int
    """Resident bytes summed over the tree (shared pages count once per process)."""
    cpu: float
    """User + system seconds of the live processes and of the children they waited for."""
    processes: int


class BotProcess:
    """One run of a bot: its process (leader of its own session and process group) and every process
    the watcher has seen below it, so that one which left the group is still stopped."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.pid = process.pid
        self.create_time = create_time(self.pid)
        self._seen: dict[int, int] = {}  # pid -> start ticks, of every descendant sampled
        self._cpu = 0.0

    @property
    def running(self) -> bool:
        return self.process.returncode is None

    @property
    def seen(self) -> list[int]:
        """Pids of the descendants the watcher has seen and that still ran at the last sample."""
        return list(self._seen)

    def sample(self) -> Usage:
        """RSS and CPU of the tree now: the process, its descendants, and the ones seen before that
        left the tree (a parent died and they came to the executor) but still run."""
        queue = [*self._seen, self.pid]  # the root first (popped from the end)
        visited: set[int] = set()
        rss, cpu, count = 0, 0.0, 0
        while queue:
            pid = queue.pop()
            if pid in visited:
                continue
            visited.add(pid)
            stat = read_stat(pid)
            if stat is None or stat.state == "Z" or self._seen.get(pid, stat.start) != stat.start:
                self._seen.pop(pid, None)
                continue
            if pid != self.pid:
                self._seen[pid] = stat.start
            rss, cpu, count = rss + stat.rss, cpu + stat.cpu, count + 1
            queue.extend(child_pids(pid, stat.threads))
        # Processes that exit take their CPU time along unless a live one waited for them: never go back.
        self._cpu = max(self._cpu, cpu)
        return Usage(rss=rss, cpu=self._cpu, processes=count)

    def _collect(self) -> list[psutil.Process]:
        """The tree with psutil, just before signalling it: psutil refuses to signal a reused pid."""
        found: dict[int, psutil.Process] = {}
        with contextlib.suppress(psutil.NoSuchProcess):
            root = psutil.Process(self.pid)
            found[self.pid] = root
            found.update((child.pid, child) for child in root.children(recursive=True))
        for pid, start in list(self._seen.items()):
            stat = read_stat(pid)
            if pid in found or stat is None or stat.start != start:
                continue
            with contextlib.suppress(psutil.NoSuchProcess):
                found[pid] = psutil.Process(pid)
                found.update((child.pid, child) for child in found[pid].children(recursive=True))
        return list(found.values())

    def signal(self, number: int) -> None:
        """Send ``number`` to the process group and to every descendant, in or out of the group."""
        processes = self._collect()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, number)
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                process.send_signal(number)

    def _alive(self, processes: list[psutil.Process]) -> bool:
        reap_adopted([self.pid], [*self._seen, *(process.pid for process in processes)])
        try:
            os.killpg(self.pid, 0)  # any member left, zombies included (the leader's until asyncio reaps)
            return True
        except (ProcessLookupError, PermissionError):
            pass
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                if process.status() != psutil.STATUS_ZOMBIE:
                    return True
        return False

    async def _wait_gone(self, processes: list[psutil.Process], seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while self._alive(processes):
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(_POLL)
        return True

    async def stop(self, grace: float) -> None:
        """SIGTERM to the group and the tree; after ``grace`` seconds SIGKILL to whatever is left. Returns
        when every process of the tree is gone and reaped (or, past a last bounded wait, logs which not)."""
        processes = self._collect()
        self.signal(signal.SIGTERM)
        if not await self._wait_gone(processes, grace):
            processes += self._collect()
            self.signal(signal.SIGKILL)
            await self._settle(processes)
        await exit_status(self.process)

    def kill(self) -> None:
        """SIGKILL the group and the tree now, without waiting (a bot over a limit gets no grace)."""
        self.signal(signal.SIGKILL)

    async def clean_up(self, grace: float) -> None:
        """After the bot's own process ended: stop what it left running in its group or below it."""
        if self._alive(self._collect()):
            log.info("bot process %s left processes behind; stopping them", self.pid)
            await self.stop(grace)
        self._seen.clear()

    async def _settle(self, processes: list[psutil.Process], seconds: float = 5.0) -> None:
        if not await self._wait_gone(processes, seconds):
            log.warning("processes of bot process %s outlived SIGKILL for %.0f s", self.pid, seconds)


def kill_leftover(pid: int, create_time: float, *, grace: float = 5.0) -> bool:
    """Stop what a crashed executor left of a bot: the process ``pid`` started at ``create_time`` (as
    psutil reports it), its descendants, and the members of its session and process group that outlived
    it. SIGTERM, then SIGKILL after ``grace`` seconds. True if anything was found.

    Blocks for up to ``grace`` seconds and more: call it with ``asyncio.to_thread``. A process that now
    holds ``pid`` but started at another time is a different one and is left alone; Linux does not hand
    out a pid while a session or group of that number has members, so none can be confused with ours.
    """
    found = _leftovers(pid, create_time)
    if not found:
        return False
    for process in found:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            process.terminate()
    alive = _wait_procs(found, grace)
    for process in alive:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            process.kill()
    if _wait_procs(alive, 5.0):
        log.warning("leftover processes of %s survived SIGKILL", pid)
    return True


def _leftovers(pid: int, started: float) -> list[psutil.Process]:
    found: dict[int, psutil.Process] = {}
    try:
        root = psutil.Process(pid)
        if abs(root.create_time() - started) > _CREATE_TIME_TOLERANCE:
            return []  # the pid was reused, so the old session and group were empty
        found[pid] = root
    except psutil.NoSuchProcess:
        pass
    for process in psutil.process_iter(["create_time"]):
        with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError):
            began = process.info["create_time"]
            if process.pid == os.getpid() or began is None or began < started - _CREATE_TIME_TOLERANCE:
                continue
            if pid in (os.getsid(process.pid), os.getpgid(process.pid)):
                found[process.pid] = process
    for process in list(found.values()):
        with contextlib.suppress(psutil.NoSuchProcess):
            found.update((child.pid, child) for child in process.children(recursive=True))
    return [process for process in found.values() if _running(process)]


def _running(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_procs(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until every process is gone or a zombie (PID 1 may be slow to reap, or not reap at all);
    reap the ones that are this process's children. Returns those still running."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [process for process in processes if _running(process)]
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess, ChildProcessError):
                if process not in alive and process.ppid() == os.getpid():
                    os.waitpid(process.pid, os.WNOHANG)
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(_POLL)
