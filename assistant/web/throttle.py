"""How long a failed password login makes the next attempt wait: pure decisions, no I/O.

A few failures are free (typos); after that each failure doubles the wait before the next attempt, up
to a ceiling, and failures are forgotten after a quiet spell. Accounts and client addresses have a
policy each: an account is guessed at from many addresses, an address guesses at many accounts (and
may be an office behind one NAT, hence its larger allowance). ``storage.login_attempts`` keeps the
counts in Postgres and applies these policies atomically.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

MAX_DOUBLINGS = 30
"""Beyond this the ceiling holds anyway; keeps ``2 ** n`` a small number."""


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """Free failures, then growing waits (``storage.login_attempts.AttemptPolicy``)."""

    free: int
    """Failures that cost no wait."""
    first_delay: float = 1.0
    """Seconds to wait after the first failure beyond ``free``; each further failure doubles it."""
    max_delay: float = 300.0
    """The longest wait: a forgotten password costs at most this long per attempt."""
    forget_after: float = 900.0
    """Seconds without a failure after which the count starts again from zero."""

    def delay(self, failures: int) -> float:
        """Seconds the next attempt waits after the ``failures``-th failure in a row."""
        if failures < self.free:
            return 0.0
        return min(self.max_delay, self.first_delay * 2 ** min(failures - self.free, MAX_DOUBLINGS))

    def failures_now(self, failures: int, last_failure: datetime | None, now: datetime) -> int:
        """The failures that still count at ``now``: none once ``forget_after`` has passed."""
        if last_failure is None or (now - last_failure).total_seconds() >= self.forget_after:
            return 0
        return failures

    def retry_after(self, failures: int, last_failure: datetime | None, now: datetime) -> float:
        """Seconds before the next attempt may start (0: now)."""
        if last_failure is None:
            return 0.0
        return max(0.0, self.delay(failures) - (now - last_failure).total_seconds())


ACCOUNT = ThrottlePolicy(free=5)
"""Per account name: five free failures, then 1 s, 2 s, 4 s … up to 5 minutes between attempts."""
ADDRESS = ThrottlePolicy(free=20)
"""Per client address: twenty free failures (several people behind one address), then the same waits."""


def whole_seconds(wait: float) -> int:
    """A wait as the whole seconds a ``Retry-After`` header and a person are told (rounded up, at least 1)."""
    return max(1, math.ceil(wait))
