"""Bot tools: list, start, stop, restart, inspect and read the logs of supervised bots."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from tools.builtin.base import BotName, Table, ToolInput, ToolOutput
from tools.builtin.system import describe_tool
from tools.definition import Risk, ToolDefinition

AGENT = "bots"

BotState = Literal["registered", "starting", "running", "stopping", "stopped", "exited", "failed"]
"""``registered``: never run yet; ``exited``: ended on its own; ``failed``: ended badly (a limit kill, a
non-zero exit) and not restarted."""


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
    uptime: float | None = Field(default=None, ge=0, description="Seconds the current process has run.")
    rss: int | None = Field(default=None, ge=0, description="Resident memory of its process tree, bytes.")
    cpu_percent: float | None = Field(default=None, ge=0, description="CPU use of its tree, % of one core.")
    cpu_seconds: float | None = Field(default=None, ge=0, description="CPU time its run has used, seconds.")
    reason: str | None = Field(default=None, description="Why it is in this state (how the last run ended).")
    host: str | None = Field(default=None, description="The executor the bot is pinned to.")

    def summary(self) -> str:
        details = ", ".join(self._details())
        text = f"The {self.name} bot {self._state_words()}"
        if details:
            text += f" ({details})"
        return text + "."

    def _state_words(self) -> str:
        words = {
            "registered": "is registered and has not run yet",
            "exited": "has ended",
            "failed": "has failed",
        }
        text = words.get(self.status, f"is {self.status}")
        if self.reason and self.status in {"stopped", "exited", "failed"}:
            text += f": {self.reason}"
        return text

    def _details(self) -> list[str]:
        parts = []
        if self.uptime is not None and self.status == "running":
            parts.append(f"up {duration_text(self.uptime)}")
        if self.rss is not None and self.status == "running":
            parts.append(f"{self.rss / 1_048_576:.1f} MB")
        if self.cpu_percent is not None and self.status == "running":
            parts.append(f"{self.cpu_percent:.1f} % CPU")
        if self.restarts:
            parts.append(f"{self.restarts} restart{'s' if self.restarts != 1 else ''}")
        return parts

    def row(self) -> tuple[str, ...]:
        """This bot as a row of ``BotStatusResult.table``."""
        running = self.status == "running"
        return (
            self.name,
            self.status,
            str(self.pid) if self.pid and running else "",
            duration_text(self.uptime) if self.uptime is not None and running else "",
            f"{self.rss / 1_048_576:.1f} MB" if self.rss is not None and running else "",
            f"{self.cpu_percent:.1f}" if self.cpu_percent is not None and running else "",
            str(self.restarts),
            self.reason or "",
        )


def duration_text(seconds: float) -> str:
    """A short duration: "42 s", "3 min", "2 h 5 min", "3 d 4 h"."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min"
    if whole < 86400:
        return f"{whole // 3600} h {whole % 3600 // 60} min"
    return f"{whole // 86400} d {whole % 86400 // 3600} h"


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

    def table(self) -> Table | None:
        if not self.bots:
            return None
        columns = ("bot", "state", "pid", "uptime", "RSS", "CPU %", "restarts", "reason")
        return Table(columns, tuple(bot.row() for bot in self.bots))


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

DESCRIBE = describe_tool(AGENT)

TOOLS = (LIST, START, STOP, RESTART, STATUS, LOGS, DESCRIBE)
