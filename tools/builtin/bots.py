"""Bot tools: list, start, stop, restart, inspect and read the logs of supervised bots."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from tools.builtin.base import BotName, ToolInput, ToolOutput
from tools.definition import Risk, ToolDefinition

AGENT = "bots"

BotState = Literal["running", "stopped", "starting", "stopping", "crashed", "unknown"]


class BotsListInput(ToolInput):
    """List the registered bots."""


class BotNameInput(ToolInput):
    """Name one registered bot."""

    name: BotName = Field(description="The bot's name, e.g. 'backup'.")


class BotStatusInput(ToolInput):
    """Ask for the status of one bot, or of all bots."""

    name: BotName | None = Field(default=None, description="The bot's name; all bots when left out.")


class BotLogsInput(ToolInput):
    """Read the last lines a bot wrote."""

    name: BotName = Field(description="The bot's name, e.g. 'crawler'.")
    lines: int = Field(
        default=50, ge=1, le=1000, description="How many of the last lines to return (1..1000)."
    )


class BotInfo(ToolOutput):
    """One bot and its process state."""

    name: str = Field(description="The bot's name.")
    status: BotState = Field(description="The process state.")
    pid: int | None = Field(default=None, description="The process id while it runs.")
    restarts: int = Field(default=0, ge=0, description="How many times the supervisor restarted it.")
    started_at: datetime | None = Field(default=None, description="When the current run started.")

    def summary(self) -> str:
        return f"The {self.name} bot is {self.status}."


class BotList(ToolOutput):
    """All registered bots."""

    bots: list[BotInfo] = Field(default_factory=list, description="The bots, by name.")

    def summary(self) -> str:
        if not self.bots:
            return "No bots are registered."
        running = sum(1 for bot in self.bots if bot.status == "running")
        names = ", ".join(bot.name for bot in self.bots)
        return f"{len(self.bots)} bots ({running} running): {names}."


class BotActionResult(ToolOutput):
    """The outcome of starting, stopping or restarting a bot."""

    action: Literal["start", "stop", "restart"] = Field(description="What was asked.")
    bot: BotInfo = Field(description="The bot's state afterwards.")
    changed: bool = Field(default=True, description="False when the bot was in that state already.")

    def summary(self) -> str:
        name = self.bot.name
        if not self.changed:
            return f"The {name} bot is {self.bot.status} already."
        done = {"start": "Started", "stop": "Stopped", "restart": "Restarted"}[self.action]
        return f"{done} the {name} bot."


class BotStatusResult(ToolOutput):
    """Status of one bot or of all bots."""

    bots: list[BotInfo] = Field(default_factory=list, description="The bots asked about.")

    def summary(self) -> str:
        if not self.bots:
            return "No bots are registered."
        if len(self.bots) == 1:
            return self.bots[0].summary()
        return "; ".join(f"{bot.name}: {bot.status}" for bot in self.bots) + "."


class BotLogs(ToolOutput):
    """The last lines of a bot's output."""

    name: str = Field(description="The bot's name.")
    lines: list[str] = Field(default_factory=list, description="Log lines, oldest first.")
    truncated: bool = Field(default=False, description="True when older lines exist beyond these.")

    def summary(self) -> str:
        if not self.lines:
            return f"The {self.name} bot has not written anything yet."
        return f"The last {len(self.lines)} lines of the {self.name} bot's log."


def _definition(
    name: str, description: str, input_model: type[ToolInput], output_model: type[ToolOutput], risk: Risk
) -> ToolDefinition:
    return ToolDefinition(
        name=name,
        description=description,
        agent=AGENT,
        input_model=input_model,
        output_model=output_model,
        risk=risk,
    )


LIST = _definition(
    "bots_list", "List the registered bots and whether they run.", BotsListInput, BotList, Risk.READ
)
START = _definition("bots_start", "Start a registered bot.", BotNameInput, BotActionResult, Risk.WRITE)
STOP = _definition("bots_stop", "Stop a running bot.", BotNameInput, BotActionResult, Risk.DANGEROUS)
RESTART = _definition("bots_restart", "Restart a bot.", BotNameInput, BotActionResult, Risk.WRITE)
STATUS = _definition(
    "bots_status", "Status of one bot, or of all bots.", BotStatusInput, BotStatusResult, Risk.READ
)
LOGS = _definition("bots_logs", "The last lines a bot wrote to its log.", BotLogsInput, BotLogs, Risk.READ)

TOOLS = (LIST, START, STOP, RESTART, STATUS, LOGS)
