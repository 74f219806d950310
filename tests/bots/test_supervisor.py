"""The supervisor on real processes: start and stop (grace, process groups, escaped grandchildren,
no zombies), limits, restarts with backoff, logs, secrets, leftovers of a crashed executor. Linux only."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
import pytest_asyncio

from agents.bots import (
    BotAlreadyRunningError,
    BotNotLoadedError,
    BotSpec,
    BotStartError,
    Supervisor,
    Transition,
    kill_leftover,
    log_path,
)
from agents.bots.process import exit_status, hold_subreaper, release_subreaper

PY = sys.executable
ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024


class Recorder:
    """``on_transition`` that keeps every transition and lets a test wait for one."""

    def __init__(self) -> None:
        self.seen: list[Transition] = []
        self._changed = asyncio.Condition()

    async def __call__(self, transition: Transition) -> None:
        async with self._changed:
            self.seen.append(transition)
            self._changed.notify_all()

    def of(self, name: str, state: str | None = None) -> list[Transition]:
        return [t for t in self.seen if t.name == name and state in (None, t.state)]

    def states(self, name: str) -> list[str]:
        return [t.state for t in self.of(name)]

    async def wait_for(self, name: str, state: str, count: int = 1, seconds: float = 15.0) -> Transition:
        async with asyncio.timeout(seconds), self._changed:
            await self._changed.wait_for(lambda: len(self.of(name, state)) >= count)
        return self.of(name, state)[count - 1]


MakeSupervisor = Callable[..., Supervisor]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest_asyncio.fixture(loop_scope="session")
async def make(tmp_path: Path, recorder: Recorder) -> AsyncIterator[MakeSupervisor]:
    """Supervisors with quick test settings (each overridable), closed after the test."""
    made: list[Supervisor] = []

    def build(**options: Any) -> Supervisor:
        settings = {"grace": 1.0, "watch_interval": 0.1, "backoff_base": 0.05, "stable_after": 60.0}
        supervisor = Supervisor(tmp_path / "logs", recorder, **(settings | options))
        made.append(supervisor)
        return supervisor

    yield build
    for supervisor in made:
        await supervisor.close()


def python(name: str, code: str, **spec: Any) -> BotSpec:
    return BotSpec(name, (PY, "-u", "-c", textwrap.dedent(code)), **spec)


def gone(pid: int) -> bool:
    """Not running and reaped: no zombie left behind either."""
    return not psutil.pid_exists(pid)


async def until(check: Callable[[], object], seconds: float = 15.0) -> None:
    async with asyncio.timeout(seconds):
        while True:
            if check():
                return
            await asyncio.sleep(0.02)


async def eventually_lines(supervisor: Supervisor, name: str, pattern: str, count: int = 1) -> list[str]:
    """Wait for ``count`` lines of the bot's log matching ``pattern``."""
    deadline = time.monotonic() + 15
    while True:
        lines = [line for line in supervisor.logs(name, 1000)[0] if re.search(pattern, line)]
        if len(lines) >= count:
            return lines
        assert time.monotonic() < deadline, (supervisor.status(name), supervisor.logs(name, 20))
        await asyncio.sleep(0.05)


# -- specs ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "x; touch /tmp/pwned", "$(id)", "../etc", "a" * 65, "tab\tname", "é"])
def test_bad_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="letters, digits"):
        BotSpec(name, ("/bin/true",))
    with pytest.raises(ValueError):
        log_path(Path("/tmp"), name)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"command": ()}, "non-empty list"),
        ({"command": ("",)}, "non-empty list"),
        ({"command": ("/bin/echo", "a\0b")}, "NUL"),
        ({"env": {"A=B": "x"}}, "environment variable name"),
        ({"memory_mb": 0}, "memory_mb must be positive"),
        ({"cpu_percent": -5}, "cpu_percent must be positive"),
        ({"restart": "sometimes"}, "restart is one of"),
        ({"max_restarts": -1}, "max_restarts"),
    ],
)
def test_bad_specs_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BotSpec(**({"name": "ok", "command": ("/bin/true",)} | changes))


def test_a_spec_is_immutable_and_takes_lists() -> None:
    spec = BotSpec("ok", ["/bin/echo", "hi"], env={"A": "1"})  # type: ignore[arg-type]
    assert spec.command == ("/bin/echo", "hi")
    with pytest.raises(TypeError):
        spec.env["A"] = "2"  # type: ignore[index]
    assert hash(spec) == hash(BotSpec("ok", ("/bin/echo", "hi"), env={"A": "1"}))


# -- start and stop ------------------------------------------------------------------------------------


async def test_start_runs_the_process_and_stop_ends_it_in_order(
    make: MakeSupervisor, recorder: Recorder
) -> None:
    supervisor = make()
    started = await supervisor.start(BotSpec("sleeper", ("sleep", "30")))
    assert started.state == "running" and started.pid is not None
    assert psutil.Process(started.pid).cmdline() == ["sleep", "30"]
    assert os.getsid(started.pid) == started.pid  # its own session and process group
    with pytest.raises(BotAlreadyRunningError):
        await supervisor.start(BotSpec("sleeper", ("sleep", "30")))
    stopped = await supervisor.stop("sleeper")
    assert stopped.state == "stopped" and stopped.pid is None and stopped.reason == "stopped by request"
    await recorder.wait_for("sleeper", "stopped")
    assert recorder.states("sleeper") == ["starting", "running", "stopping", "stopped"]
    running, end = recorder.of("sleeper", "running")[0], recorder.of("sleeper", "stopped")[0]
    assert running.pid == started.pid and running.create_time == pytest.approx(end.create_time)
    assert end.signal == signal.SIGTERM and end.exit_code is None
    assert gone(started.pid)
    assert (await supervisor.stop("sleeper")).state == "stopped"  # stopping twice is harmless
    with pytest.raises(BotNotLoadedError):
        await supervisor.stop("nobody")


@pytest.mark.parametrize(
    ("command", "cwd", "message"),
    [
        (("/nonexistent/program",), None, "No program '/nonexistent/program' was found."),
        (("no-such-program-kommandant",), None, "was found on PATH"),
        (("/bin/true",), "/nonexistent/folder", "working folder '/nonexistent/folder' does not exist"),
    ],
)
async def test_a_start_that_cannot_exec_says_why(
    make: MakeSupervisor, recorder: Recorder, command: tuple[str, ...], cwd: str | None, message: str
) -> None:
    supervisor = make()
    with pytest.raises(BotStartError, match=re.escape(message)):
        await supervisor.start(BotSpec("broken", command, cwd=cwd))
    failed = await recorder.wait_for("broken", "failed")
    assert recorder.states("broken") == ["starting", "failed"] and message in (failed.reason or "")
    assert supervisor.status("broken").state == "failed"  # type: ignore[union-attr]


async def test_a_file_that_is_not_executable_is_refused(make: MakeSupervisor, tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    with pytest.raises(BotStartError, match="permission denied"):
        await make().start(BotSpec("plain", (str(script),)))


STUBBORN = r"""
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # inherited by the child and the grandchild
if sys.argv[1:] == ["child"]:
    if os.fork() == 0:
        os.setsid()  # the grandchild leaves the process group and the session
        os.write(1, f"grandchild {os.getpid()}\n".encode())  # one write: two processes share the pipe
        while True:
            time.sleep(1)
    os.write(1, f"child {os.getpid()}\n".encode())
    while True:
        time.sleep(1)
subprocess.Popen([sys.executable, "-u", __file__, "child"])
while True:
    time.sleep(1)
"""


async def test_stop_kills_a_tree_that_ignores_sigterm_after_the_grace(
    make: MakeSupervisor, recorder: Recorder, tmp_path: Path
) -> None:
    script = tmp_path / "stubborn.py"
    script.write_text(STUBBORN)
    supervisor = make(grace=1.0)
    started = await supervisor.start(BotSpec("stubborn", (PY, "-u", str(script))))
    lines = await eventually_lines(supervisor, "stubborn", r"^(child|grandchild) \d+$", count=2)
    found = dict(line.split() for line in lines)
    assert started.pid is not None
    pids = [started.pid, int(found["child"]), int(found["grandchild"])]
    assert all(psutil.pid_exists(pid) for pid in pids)
    assert os.getpgid(pids[2]) != started.pid  # escaped the group: killpg alone would miss it
    began = time.monotonic()
    stopped = await supervisor.stop("stubborn")
    took = time.monotonic() - began
    assert 1.0 <= took < 4.0, took
    assert stopped.state == "stopped"
    assert [pid for pid in pids if not gone(pid)] == []  # killed and reaped, grandchild included
    end = await recorder.wait_for("stubborn", "stopped")
    assert end.signal == signal.SIGKILL and end.reason == "stopped by request"


async def test_what_a_bot_leaves_behind_is_stopped_when_it_exits(
    make: MakeSupervisor, recorder: Recorder
) -> None:
    supervisor = make()
    await supervisor.start(BotSpec("parent", ("sh", "-c", "sleep 300 & echo $!; sleep 0.3"), restart="no"))
    end = await recorder.wait_for("parent", "exited")
    assert end.exit_code == 0 and end.reason == "exited with code 0"
    (line,) = supervisor.logs("parent", 10)[0]
    assert gone(int(line))


async def test_close_stops_every_bot(make: MakeSupervisor, recorder: Recorder) -> None:
    supervisor = make()
    pids = [(await supervisor.start(BotSpec(f"idle-{n}", ("sleep", "60")))).pid for n in range(3)]
    await supervisor.close()
    assert all(gone(pid) for pid in pids if pid is not None)
    assert [s.state for s in supervisor.all()] == ["stopped"] * 3
    assert {t.reason for t in recorder.seen if t.state == "stopped"} == {"executor shut down"}
    with pytest.raises(BotStartError, match="shutting down"):
        await supervisor.start(BotSpec("late", ("sleep", "1")))


async def test_restart_starts_a_fresh_process(make: MakeSupervisor, recorder: Recorder) -> None:
    supervisor = make()
    first = await supervisor.start(BotSpec("again", ("sleep", "60")))
    second = await supervisor.restart(BotSpec("again", ("sleep", "61")))
    await recorder.wait_for("again", "running", count=2)
    assert second.state == "running" and second.pid != first.pid and second.restarts == 0
    assert first.pid is not None and gone(first.pid)
    assert recorder.states("again") == ["starting", "running", "stopping", "stopped", "starting", "running"]
    assert recorder.of("again", "stopped")[0].reason == "restarted by request"


# -- arguments, output, secrets -------------------------------------------------------------------------


async def test_shell_text_in_arguments_is_passed_literally(make: MakeSupervisor, tmp_path: Path) -> None:
    markers = [tmp_path / f"pwned-{n}" for n in range(3)]
    arguments = (f"x; touch {markers[0]}", f"$(touch {markers[1]})", f"`touch {markers[2]}`", "|", "&&", "*")
    supervisor = make()
    started = await supervisor.start(BotSpec("echo", ("/bin/echo", *arguments), restart="no"))
    assert started.state == "running" and started.pid is not None  # even if it has exited already
    (line,) = await eventually_lines(supervisor, "echo", "pwned")
    assert line == " ".join(arguments)
    assert not any(marker.exists() for marker in markers)


async def test_secrets_are_masked_and_the_executor_env_stays_private(
    make: MakeSupervisor, recorder: Recorder, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KOMMANDANT_EXECUTOR_ONLY", "do-not-pass")
    code = """
        import os, sys
        print("token", os.environ["API_TOKEN"])
        print("error with", os.environ["API_TOKEN"], file=sys.stderr)
        print("executor only:", os.environ.get("KOMMANDANT_EXECUTOR_ONLY"))
        print("path set:", bool(os.environ.get("PATH")))
    """
    secret = "tok-8c1f-secret-value"
    supervisor = make()
    spec = python("secretive", code, env={"API_TOKEN": secret}, secrets=(secret,), restart="no")
    await supervisor.start(spec)
    await recorder.wait_for("secretive", "exited")
    lines = supervisor.logs("secretive", 10)[0]
    assert sorted(lines) == sorted(
        ["token ***", "[stderr] error with ***", "executor only: None", "path set: True"]
    )
    await supervisor.close()
    written = log_path(tmp_path / "logs", "secretive").read_text()
    assert "token ***" in written and secret not in written


async def test_logs_come_from_the_file_when_the_bot_is_not_loaded(
    make: MakeSupervisor, recorder: Recorder, tmp_path: Path
) -> None:
    first = make(log_file_bytes=400, log_file_backups=1)
    await first.start(python("chatty", "for n in range(300): print('line', n)", restart="no"))
    await recorder.wait_for("chatty", "exited")
    assert first.logs("chatty", 3) == (["line 297", "line 298", "line 299"], True)
    await first.close()
    second = make(log_file_bytes=400, log_file_backups=1)
    assert second.status("chatty") is None
    assert second.logs("chatty", 3) == (["line 297", "line 298", "line 299"], True)
    lines, older = second.logs("chatty", 1000)  # rotated at 400 bytes, one backup kept: about 90 lines
    assert lines[-1] == "line 299" and 60 < len(lines) < 120 and older is False
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == ["chatty.log", "chatty.log.1"]
    assert second.logs("never-ran", 5) == ([], False)
    with pytest.raises(ValueError):
        second.logs("chatty", 0)


# -- limits ----------------------------------------------------------------------------------------------

ALLOCATE = """
    import os, time
    page = os.sysconf("SC_PAGE_SIZE")
    hold = []
    while True:
        hold.append(b"x" * (10 * 1024 * 1024))
        with open("/proc/self/statm") as statm:
            rss = int(statm.read().split()[1]) * page
        print(time.time(), rss)
        time.sleep(0.1)
"""


async def test_memory_limit_kills_within_two_seconds_and_counts_as_a_failure(
    make: MakeSupervisor, recorder: Recorder
) -> None:
    supervisor = make(watch_interval=0.25)
    await supervisor.start(python("hungry", ALLOCATE, memory_mb=50, restart="on-failure", max_restarts=1))
    ended = await recorder.wait_for("hungry", "exited", seconds=30)
    failed = await recorder.wait_for("hungry", "failed", seconds=30)
    samples = [line.split() for line in supervisor.logs("hungry", 1000)[0]]
    crossed = min(float(at) for at, rss in samples if int(rss) > 50 * MIB)
    assert ended.at.timestamp() - crossed < 2.0
    assert re.fullmatch(r"killed: memory limit \(\d+ MB > 50 MB\)", ended.reason or ""), ended.reason
    assert ended.signal == signal.SIGKILL and ended.peak_rss > 50 * MIB
    assert recorder.of("hungry", "stopping")[0].reason == ended.reason
    # on-failure restarted it once; the second kill used up max_restarts.
    assert recorder.states("hungry") == [
        "starting", "running", "stopping", "exited", "starting", "running", "stopping", "failed"
    ]  # fmt: skip
    assert (failed.reason or "").startswith("gave up after 1 restarts: killed: memory limit (")


BURN = "while True: pass"
IGNORE_XCPU = "import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True: pass"


@pytest.mark.parametrize(
    ("code", "ended_by"), [(BURN, signal.SIGXCPU), (IGNORE_XCPU, signal.SIGKILL)], ids=["sigxcpu", "sigkill"]
)
async def test_cpu_seconds_limit_ends_the_run(
    make: MakeSupervisor, recorder: Recorder, code: str, ended_by: int
) -> None:
    supervisor = make()
    await supervisor.start(python("burner", code, cpu_seconds=1, restart="no"))
    failed = await recorder.wait_for("burner", "failed", seconds=40)
    assert failed.reason == "killed: cpu limit" and failed.signal == ended_by
    assert failed.cpu_seconds >= 0.8


async def test_cpu_percent_limit_is_watched_over_a_window(make: MakeSupervisor, recorder: Recorder) -> None:
    supervisor = make(cpu_window=1.0)
    await supervisor.start(python("spinner", BURN, cpu_percent=20, restart="no"))
    await supervisor.start(BotSpec("calm", ("sleep", "30"), cpu_percent=20, restart="no"))
    failed = await recorder.wait_for("spinner", "failed", seconds=20)
    assert re.fullmatch(r"killed: cpu limit \(\d+% > 20%\)", failed.reason or ""), failed.reason
    assert supervisor.status("calm").state == "running"  # type: ignore[union-attr]


async def test_status_shows_uptime_rss_and_cpu(make: MakeSupervisor) -> None:
    supervisor = make(cpu_window=1.0)
    code = """
        import time
        block = b"x" * (30 * 1024 * 1024)
        end = time.time() + 30
        while time.time() < end:
            pass
    """
    await supervisor.start(python("busy", code))
    await asyncio.sleep(1.5)
    snapshot = supervisor.status("busy")
    assert snapshot is not None and snapshot.state == "running"
    assert snapshot.uptime is not None and snapshot.uptime >= 1.5
    assert snapshot.rss > 30 * MIB and snapshot.cpu_seconds > 0.3 and snapshot.cpu_percent > 20
    assert [s.name for s in supervisor.all()] == ["busy"]


# -- restarts ----------------------------------------------------------------------------------------------


async def test_a_crashing_bot_restarts_with_growing_delays_then_fails(
    make: MakeSupervisor, recorder: Recorder
) -> None:
    supervisor = make(backoff_base=0.3, backoff_max=30.0)
    await supervisor.start(BotSpec("crasher", ("/bin/false",), max_restarts=3))
    failed = await recorder.wait_for("crasher", "failed", seconds=20)
    runs, ends = recorder.of("crasher", "running"), recorder.of("crasher", "exited")
    assert len(runs) == 4 and len(ends) == 3 and all(end.exit_code == 1 for end in ends)
    gaps = [(run.at - end.at).total_seconds() for end, run in zip(ends, runs[1:], strict=True)]
    assert all(gap >= 0.3 * 2**n * 0.8 for n, gap in enumerate(gaps)), gaps
    assert gaps[0] < gaps[1] < gaps[2], gaps
    assert [end.restarts for end in ends] == [0, 1, 2]
    assert failed.reason == "gave up after 3 restarts: exited with code 1" and failed.restarts == 3
    assert supervisor.status("crasher").state == "failed"  # type: ignore[union-attr]


COUNTED = """
    import pathlib, sys, time
    counter = pathlib.Path(sys.argv[1])
    run = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(run))
    if run == 4:
        time.sleep(1.6)  # past stable_after: the streak starts again
    sys.exit(1)
"""


async def test_a_run_past_stable_after_resets_the_restart_count(
    make: MakeSupervisor, recorder: Recorder, tmp_path: Path
) -> None:
    supervisor = make(stable_after=1.0, backoff_base=0.05)
    spec = BotSpec("flaky", (PY, "-c", textwrap.dedent(COUNTED), str(tmp_path / "runs")), max_restarts=3)
    await supervisor.start(spec)
    await recorder.wait_for("flaky", "running", count=4)
    await asyncio.sleep(1.3)
    assert supervisor.status("flaky").restarts == 0  # type: ignore[union-attr]
    failed = await recorder.wait_for("flaky", "failed", seconds=30)
    assert (tmp_path / "runs").read_text() == "7"  # 3 restarts, reset, 3 more, then it gave up
    assert [end.restarts for end in recorder.of("flaky", "exited")] == [0, 1, 2, 0, 1, 2]
    assert failed.reason == "gave up after 3 restarts: exited with code 1"


async def test_stop_during_the_backoff_cancels_the_restart(make: MakeSupervisor, recorder: Recorder) -> None:
    supervisor = make(backoff_base=5.0)
    await supervisor.start(BotSpec("waiting", ("/bin/false",)))
    await recorder.wait_for("waiting", "starting", count=2)
    began = time.monotonic()
    assert (await supervisor.stop("waiting")).state == "stopped"
    assert time.monotonic() - began < 1.0
    assert recorder.states("waiting")[-2:] == ["starting", "stopped"]


async def test_a_slow_or_failing_callback_does_not_break_supervision(tmp_path: Path) -> None:
    delivered: list[str] = []

    async def clumsy(transition: Transition) -> None:
        if transition.state == "running":
            raise RuntimeError("the callback broke")
        await asyncio.sleep(0.2)
        delivered.append(transition.state)

    supervisor = Supervisor(tmp_path, clumsy, backoff_base=0.01, watch_interval=0.1)
    try:
        await supervisor.start(BotSpec("bumpy", ("/bin/false",), max_restarts=2))
        await until(lambda: supervisor.status("bumpy").state == "failed")  # type: ignore[union-attr]
        # Supervision ran ahead of the slow callback; the news arrives complete and in order.
        assert len(delivered) < 6
    finally:
        await supervisor.close()
    assert delivered == ["starting", "exited", "starting", "exited", "starting", "failed"]


# -- leftovers of a crashed executor -----------------------------------------------------------------

EXECUTOR = """
import asyncio, json, sys
from pathlib import Path
from agents.bots import BotSpec, Supervisor

async def main() -> None:
    async def ignore(transition): pass
    supervisor = Supervisor(Path(sys.argv[1]), ignore)
    snap = await supervisor.start(BotSpec("orphan", ("sh", "-c", "sleep 300 & sleep 300")))
    print(json.dumps({"pid": snap.pid}), flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


@pytest.fixture
def subreaper() -> Any:
    """This test process adopts what a dying executor leaves, as a restarted executor's parent would
    be asked to (and as PID 1 of this machine does not: it never reaps)."""
    hold_subreaper()
    yield
    release_subreaper()


async def test_kill_leftover_stops_what_a_crashed_executor_left(tmp_path: Path, subreaper: Any) -> None:
    executor = await asyncio.create_subprocess_exec(
        PY, "-c", EXECUTOR, str(tmp_path), cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )  # fmt: skip
    try:
        assert executor.stdout is not None
        found = json.loads(await asyncio.wait_for(executor.stdout.readline(), 30))
    finally:
        executor.kill()
        await executor.wait()
    pid = found["pid"]
    bot = psutil.Process(pid)
    await until(bot.children)
    children = [child.pid for child in bot.children()]
    assert bot.ppid() == os.getpid() and bot.is_running()  # orphaned: adopted by this process
    assert not await asyncio.to_thread(kill_leftover, pid, bot.create_time() + 5.0, grace=1.0)
    assert bot.is_running()  # another start time: another process, left alone
    assert await asyncio.to_thread(kill_leftover, pid, bot.create_time(), grace=1.0)
    assert gone(pid) and all(gone(child) for child in children)
    assert not await asyncio.to_thread(kill_leftover, pid, 0.0, grace=1.0)


async def test_kill_leftover_finds_the_session_after_its_leader_died(subreaper: Any) -> None:
    leader = await asyncio.create_subprocess_exec(
        "sh", "-c", "sleep 300 & echo $!; sleep 0.5", stdout=asyncio.subprocess.PIPE, start_new_session=True
    )  # fmt: skip
    created = psutil.Process(leader.pid).create_time()
    assert leader.stdout is not None
    member = int(await leader.stdout.readline())
    await exit_status(leader)  # not leader.wait(): on Python 3.11 that waits for the pipe, which sleep holds
    assert psutil.Process(member).is_running() and os.getsid(member) == leader.pid
    assert await asyncio.to_thread(kill_leftover, leader.pid, created, grace=1.0)
    assert gone(member)
