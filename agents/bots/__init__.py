"""The bot executor: registered scripts run as supervised processes with limits, restarts and logs."""

from agents.bots.policy import RestartPolicy
from agents.bots.supervisor import (
    BotAlreadyRunningError,
    BotNotLoadedError,
    BotRunState,
    BotSpec,
    BotStartError,
    Snapshot,
    Supervisor,
    Transition,
    kill_leftover,
    log_path,
    validate_name,
)

__all__ = [
    "BotAlreadyRunningError",
    "BotNotLoadedError",
    "BotRunState",
    "BotSpec",
    "BotStartError",
    "RestartPolicy",
    "Snapshot",
    "Supervisor",
    "Transition",
    "kill_leftover",
    "log_path",
    "validate_name",
]
