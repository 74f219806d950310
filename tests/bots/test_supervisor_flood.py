"""Bots that flood their output must not stall the supervisor or grow the executor's memory.

Two real bots: one writes 50 MB without a newline, one writes lines as fast as Python can (several
hundred thousand a second when nothing holds it back). While they run, a probe task calls ``status()``
every 10 ms and measures how late it gets to do so; the test process's RSS is sampled alongside.
The bound asserted is the one ``agents.bots.output`` states: a bounded tail per bot plus buffers,
here well under 40 MiB for both bots together (the growth measured is typically a few MiB).
"""

from __future__ import annotations

import asyncio
import sys
import textwrap
import time
from pathlib import Path

import psutil

from agents.bots import BotSpec, Supervisor, Transition
from agents.bots.output import CUT_MARKER

MIB = 1024 * 1024
NO_NEWLINE = """
    import sys, time
    chunk = b"x" * 65536
    for _ in range(800):  # 50 MiB, not one newline
        sys.stdout.buffer.write(chunk)
    sys.stdout.buffer.flush()
    time.sleep(60)
"""
FAST_LINES = """
    import sys
    write = sys.stdout.write
    n = 0
    while True:
        write("line %d of a bot that never stops talking\\n" % n)
        n += 1
"""
RSS_BOUND = 40 * MIB
STALL_BOUND = 0.2


async def ignore(transition: Transition) -> None:
    pass


def spec(name: str, code: str) -> BotSpec:
    return BotSpec(name, (sys.executable, "-c", textwrap.dedent(code)), restart="no")


async def test_floods_neither_stall_status_nor_grow_memory(tmp_path: Path) -> None:
    me = psutil.Process()
    supervisor = Supervisor(tmp_path, ignore, log_file_bytes=2_000_000, log_file_backups=1)
    try:
        await supervisor.start(BotSpec("warm-up", ("/bin/echo", "hello"), restart="no"))
        await asyncio.sleep(0.5)
        before = me.memory_info().rss
        await supervisor.start(spec("no-newline", NO_NEWLINE))
        await supervisor.start(spec("fast-lines", FAST_LINES))
        worst_stall, peak_rss, began = 0.0, before, time.monotonic()
        while time.monotonic() - began < 5.0:
            asked = time.perf_counter()
            await asyncio.sleep(0.01)
            states = {name: supervisor.status(name).state for name in ("no-newline", "fast-lines")}  # type: ignore[union-attr]
            worst_stall = max(worst_stall, time.perf_counter() - asked - 0.01)
            peak_rss = max(peak_rss, me.memory_info().rss)
        assert states == {"no-newline": "running", "fast-lines": "running"}
        lines, older = supervisor.logs("fast-lines", 1000)
        assert older and len(lines) == 1000 and lines[-1].endswith("never stops talking")
        written = supervisor._bots["fast-lines"].output._count
        (cut,) = supervisor.logs("no-newline", 10)[0]
        assert cut == "x" * 8192 + CUT_MARKER
    finally:
        await supervisor.close()
    print(f"worst stall {worst_stall * 1000:.0f} ms, RSS growth {(peak_rss - before) / MIB:.1f} MiB, "
          f"{written / 5:.0f} lines/s captured")  # fmt: skip
    assert worst_stall < STALL_BOUND, worst_stall
    assert peak_rss - before < RSS_BOUND, (peak_rss - before) / MIB
    assert written > 50_000
