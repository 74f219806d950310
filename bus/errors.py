"""Errors of the message bus. Each message is a sentence a person can read."""


class BusError(Exception):
    """Base of every bus error."""


class CallTimeout(BusError, TimeoutError):
    """The call's deadline passed before a result arrived."""


class BusUnavailable(BusError, ConnectionError):
    """The broker is unreachable, or the connection was lost while a call was under way."""


class MessageTooLarge(BusError, ValueError):
    """An encoded message is larger than the configured limit."""


class PoisonMessage(BusError, ValueError):
    """A message that cannot be parsed: it is dead-lettered at once, never retried."""


class PermanentError(BusError):
    """Raised by a handler for a failure that retrying cannot fix: dead-lettered at once."""


class NoWorker(BusError, LookupError):
    """Nobody serves the agent: no worker took its calls within the grace period, so the call was not sent.

    ``agent`` names the agent; the message says how to start one.
    """

    def __init__(self, agent: str, message: str) -> None:
        super().__init__(message)
        self.agent = agent
