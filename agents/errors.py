"""Errors an agent's handler raises for a person to read; the worker turns them into error results."""


class AgentError(Exception):
    """A failure the person can act on ("there is no bot called x"); never retried."""


class NotAvailableError(AgentError):
    """The tool's agent is not built into this version yet."""
