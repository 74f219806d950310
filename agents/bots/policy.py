"""What becomes of a bot whose process ended: restart it (after how long) or let it rest, and why.

Pure decisions over small dataclasses; the supervisor carries them out. The rules:

- ``no`` never restarts; ``on-failure`` restarts after a failure; ``always`` restarts after any ending
  that ``stop()`` did not ask for. A stop that was asked for never restarts.
- A failure is an exit code other than 0, death by a signal, or a kill for a limit (memory, CPU): a
  limit kill counts as a failure, so ``on-failure`` restarts a bot killed for its memory.
- The n-th restart of a streak (n from 0) waits ``min(max, base * 2**n)`` seconds, spread by a jitter
  of +-``jitter`` (20 %) so that bots failing together do not come back together, and never more
  than ``max``. The spread keeps consecutive delays growing while the doubling outruns it.
- After ``max_restarts`` restarts in a row the bot rests as ``failed``: "gave up after N restarts: ...".
  A run that stayed up for ``stable_after`` seconds ends the streak: its ending counts from 0 again.
- A bot that is not restarted rests as ``stopped`` (asked for), ``exited`` (exit code 0) or
  ``failed`` (any failure), the systemd reading of those words.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Literal

RestartPolicy = Literal["no", "on-failure", "always"]
RESTART_POLICIES: tuple[RestartPolicy, ...] = ("no", "on-failure", "always")
RestState = Literal["stopped", "exited", "failed"]

_MAX_DOUBLINGS = 60  # 2**60 times any sane base is past any maximum; keeps the float finite
CPU_SAMPLE_SLACK = 1.0
"""Seconds the watcher's last CPU sample may lag behind the kernel's count when RLIMIT_CPU strikes."""


def signal_name(number: int) -> str:
    """``SIGTERM`` for 15; the number itself for a signal Python does not name."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


@dataclass(frozen=True, slots=True)
class Ending:
    """How one run of a bot ended."""

    exit_code: int | None
    """The exit code when the process exited on its own, else None."""
    signal: int | None
    """The signal that ended the process, else None."""
    limit: str | None = None
    """Why it was killed for a limit ("killed: memory limit (61 MB > 50 MB)"), else None."""
    requested: str | None = None
    """The reason given to ``stop()`` when the ending was asked for, else None."""

    @classmethod
    def from_returncode(
        cls, returncode: int, *, limit: str | None = None, requested: str | None = None
    ) -> Ending:
        """From asyncio's ``returncode``: negative means killed by that signal."""
        if returncode < 0:
            return cls(exit_code=None, signal=-returncode, limit=limit, requested=requested)
        return cls(exit_code=returncode, signal=None, limit=limit, requested=requested)

    @property
    def failed(self) -> bool:
        """A limit kill, a non-zero exit code or death by a signal."""
        return self.limit is not None or self.exit_code != 0

    @property
    def reason(self) -> str:
        """One line a person reads: the limit, the stop request, the exit code or the signal."""
        if self.limit is not None:
            return self.limit
        if self.requested is not None:
            return self.requested
        if self.signal is not None:
            return f"killed by {signal_name(self.signal)}"
        return f"exited with code {self.exit_code}"


def cpu_limit_hit(signal_number: int | None, *, cpu_used: float, cpu_limit: int | None) -> bool:
    """Whether the kernel ended a run for its RLIMIT_CPU: SIGXCPU at the soft limit, or SIGKILL at the
    hard one (one second later) for a process that ignores SIGXCPU. ``cpu_used`` is the last sample."""
    if cpu_limit is None or signal_number is None:
        return False
    if signal_number == signal.SIGXCPU:
        return True
    return signal_number == signal.SIGKILL and cpu_used >= cpu_limit - CPU_SAMPLE_SLACK


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter."""

    base: float = 0.5
    maximum: float = 30.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.base < 0 or self.maximum < 0:
            raise ValueError("backoff base and maximum must not be negative")
        if not 0 <= self.jitter < 1:
            raise ValueError("backoff jitter must be at least 0 and below 1")

    def delay(self, restart: int, rand: float) -> float:
        """Seconds before restart number ``restart`` of a streak (from 0); ``rand`` in [0, 1) picks the
        point in the jitter band (0.5 is the middle)."""
        nominal = min(self.maximum, self.base * 2 ** min(restart, _MAX_DOUBLINGS))
        return min(self.maximum, nominal * (1 + self.jitter * (2 * rand - 1)))


@dataclass(frozen=True, slots=True)
class Restart:
    """Start the bot again after ``delay`` seconds; ``restarts`` is the streak counting this restart."""

    delay: float
    restarts: int


@dataclass(frozen=True, slots=True)
class Rest:
    """Leave the bot in ``state`` with ``reason``; ``restarts`` is the streak it ended with."""

    state: RestState
    reason: str
    restarts: int


def wants_restart(policy: RestartPolicy, ending: Ending) -> bool:
    """Whether ``policy`` restarts after ``ending`` (before counting the streak)."""
    if ending.requested is not None:
        return False
    return policy == "always" or (policy == "on-failure" and ending.failed)


def decide(
    ending: Ending,
    *,
    policy: RestartPolicy,
    restarts: int,
    max_restarts: int,
    uptime: float,
    stable_after: float,
    backoff: Backoff,
    rand: float,
) -> Restart | Rest:
    """What to do after a run that lasted ``uptime`` seconds ended as ``ending``, ``restarts`` restarts
    into the current streak."""
    streak = 0 if uptime >= stable_after else restarts
    if ending.requested is not None:
        return Rest("stopped", ending.reason, streak)
    if not wants_restart(policy, ending):
        return Rest("failed" if ending.failed else "exited", ending.reason, streak)
    if streak >= max_restarts:
        return Rest("failed", f"gave up after {streak} restarts: {ending.reason}", streak)
    return Restart(backoff.delay(streak, rand), streak + 1)
