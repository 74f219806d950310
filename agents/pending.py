"""Agents whose tools are in the catalog but whose work ships in a later version: they answer clearly."""

from __future__ import annotations

from typing import Any

from agents.base import Agent, CallContext
from agents.errors import NotAvailableError
from agents.services import Services


class PendingAgent(Agent):
    """Serves every catalog tool of its agent name with a clear "not available yet" error result."""

    what: str = ""

    def __init__(self, services: Services) -> None:
        super().__init__(services)
        for tool in services.catalog.by_agent(self.name):
            self.register(tool, self._not_yet)

    async def _not_yet(self, args: Any, ctx: CallContext) -> Any:
        raise NotAvailableError(f"{self.what} are not available in this version of Kommandant yet.")
