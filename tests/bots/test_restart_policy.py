"""The restart rules as pure decisions: which endings restart, how long to wait, when to give up."""

from __future__ import annotations

import signal

import pytest

from agents.bots.policy import Backoff, Ending, Rest, Restart, cpu_limit_hit, decide

BACKOFF = Backoff(base=0.5, maximum=30.0, jitter=0.2)
CRASH = Ending(exit_code=1, signal=None)
CLEAN = Ending(exit_code=0, signal=None)
KILLED = Ending.from_returncode(-9)
LIMIT = Ending(exit_code=None, signal=9, limit="killed: memory limit (61 MB > 50 MB)")
STOPPED = Ending(exit_code=None, signal=15, requested="stopped by request")


def after(ending: Ending, policy: str = "on-failure", **kw: float) -> Restart | Rest:
    args = {"restarts": 0, "max_restarts": 3, "uptime": 1.0, "stable_after": 60.0, "rand": 0.5} | kw
    return decide(
        ending,
        policy=policy,  # type: ignore[arg-type]
        restarts=int(args["restarts"]),
        max_restarts=int(args["max_restarts"]),
        uptime=args["uptime"],
        stable_after=args["stable_after"],
        backoff=BACKOFF,
        rand=args["rand"],
    )


@pytest.mark.parametrize(
    ("ending", "policy", "restarts"),
    [
        (CRASH, "on-failure", True),
        (KILLED, "on-failure", True),
        (LIMIT, "on-failure", True),  # a limit kill counts as a failure
        (CLEAN, "on-failure", False),
        (CLEAN, "always", True),
        (CRASH, "always", True),
        (CRASH, "no", False),
        (LIMIT, "no", False),
        (STOPPED, "always", False),  # a stop that was asked for never restarts
        (STOPPED, "on-failure", False),
    ],
)
def test_which_endings_restart(ending: Ending, policy: str, restarts: bool) -> None:
    assert isinstance(after(ending, policy), Restart) is restarts


def test_endings_that_rest_say_how() -> None:
    assert after(CLEAN) == Rest("exited", "exited with code 0", 0)
    assert after(CRASH, "no") == Rest("failed", "exited with code 1", 0)
    assert after(LIMIT, "no") == Rest("failed", "killed: memory limit (61 MB > 50 MB)", 0)
    assert after(KILLED, "no").reason == "killed by SIGKILL"  # type: ignore[union-attr]
    assert after(STOPPED, "always", restarts=2) == Rest("stopped", "stopped by request", 2)


def test_delays_double_within_the_jitter_band_and_stop_at_the_maximum() -> None:
    middles = [after(CRASH, restarts=n, max_restarts=99).delay for n in range(8)]  # type: ignore[union-attr]
    assert middles[:6] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
    assert middles[6:] == [30.0, 30.0]
    low = BACKOFF.delay(3, 0.0)
    high = BACKOFF.delay(3, 0.999999)
    assert low == pytest.approx(4.0 * 0.8) and high == pytest.approx(4.0 * 1.2, rel=1e-5)
    # The band never makes a later delay shorter than an earlier one, and never passes the maximum.
    assert BACKOFF.delay(4, 0.0) > BACKOFF.delay(3, 0.999999)
    assert BACKOFF.delay(40, 0.999999) == 30.0
    assert BACKOFF.delay(10_000, 0.5) == 30.0  # no overflow for a bot that failed very often


def test_the_streak_counts_up_and_gives_up_after_max_restarts() -> None:
    decisions = [after(CRASH, restarts=n) for n in range(4)]
    assert [d.restarts for d in decisions] == [1, 2, 3, 3]
    assert decisions[-1] == Rest("failed", "gave up after 3 restarts: exited with code 1", 3)
    assert after(LIMIT, restarts=1, max_restarts=1).reason == (  # type: ignore[union-attr]
        "gave up after 1 restarts: killed: memory limit (61 MB > 50 MB)"
    )


def test_a_stable_run_starts_the_streak_again() -> None:
    gave_up = Rest("failed", "gave up after 3 restarts: exited with code 1", 3)
    assert after(CRASH, restarts=3, uptime=59.0) == gave_up
    assert after(CRASH, restarts=3, uptime=60.0) == Restart(delay=0.5, restarts=1)


def test_cpu_limit_is_read_from_the_signal() -> None:
    assert cpu_limit_hit(signal.SIGXCPU, cpu_used=0.2, cpu_limit=2)
    assert cpu_limit_hit(signal.SIGKILL, cpu_used=2.8, cpu_limit=2)  # ignored SIGXCPU, hard limit
    assert not cpu_limit_hit(signal.SIGKILL, cpu_used=0.1, cpu_limit=5)  # someone else's SIGKILL
    assert not cpu_limit_hit(signal.SIGXCPU, cpu_used=9.0, cpu_limit=None)
    assert not cpu_limit_hit(None, cpu_used=9.0, cpu_limit=1)


def test_bad_backoff_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="jitter"):
        Backoff(jitter=1.5)
    with pytest.raises(ValueError, match="negative"):
        Backoff(base=-1)
