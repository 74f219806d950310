"""The services of one Kommandant process: database, bus, agents (all of them in embedded mode)."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from agents import BUILTIN_AGENTS, AgentWorker, Services
from assistant.kommandant import Kommandant
from bus import Bus, create_bus
from embeddings import embedder_from_settings
from intents import Recognizer
from settings import Settings
from storage import Database, PostgresResultStore
from storage.audit import AuditLog
from tools import builtin_catalog

if TYPE_CHECKING:
    from assistant.scheduler import Scheduler


class Runtime:
    """``async with Runtime(settings) as rt:`` opens everything a front door needs; leaving closes it.

    ``agents``: which built-in agents to run here. Default: all of them in embedded mode (no
    ``KOMMANDANT_AMQP_URL``), none in distributed mode, where ``kommandant worker`` runs them (unless
    ``settings.agents_in_process``: ``kommandant up --agents-here``).
    ``warm_embeddings``: start loading the embedding model in the background now, and warm the LLM
    fallback when one is configured (its tool index, and a one-token request that loads the model)
    (long-running servers; a one-shot ``ask`` leaves it off so a template command never waits for torch).
    ``scheduler``: fire due schedules from this process (``kommandant up`` and ``kommandant scheduler``;
    any number of processes may, each occurrence runs once).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        agents: Iterable[str] | None = None,
        database: Database | None = None,
        warm_embeddings: bool = False,
        scheduler: bool = False,
    ) -> None:
        self.settings = settings
        if agents is None:
            agents = BUILTIN_AGENTS if settings.embedded or settings.agents_in_process else ()
        unknown = sorted(set(agents) - set(BUILTIN_AGENTS))
        if unknown:
            raise ValueError(
                f"unknown agent(s): {', '.join(unknown)}; known: {', '.join(sorted(BUILTIN_AGENTS))}"
            )
        self.agent_names = list(agents)
        self._database = database
        self._warm_embeddings = warm_embeddings
        self._scheduler = scheduler
        self._stack = AsyncExitStack()
        self.services: Services | None = None
        self.kommandant: Kommandant | None = None
        self.workers: list[AgentWorker] = []
        self.scheduler: Scheduler | None = None

    async def __aenter__(self) -> Runtime:
        try:
            await self._open()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def _open(self) -> None:
        settings, stack = self.settings, self._stack
        database = self._database
        if database is None:
            database = await stack.enter_async_context(Database.from_settings(settings))
        bus: Bus = create_bus(settings, result_store=PostgresResultStore(database.sessionmaker))
        await stack.enter_async_context(bus)
        catalog = builtin_catalog()
        self.services = Services(
            settings=settings,
            database=database,
            bus=bus,
            catalog=catalog,
            audit=AuditLog(database.sessionmaker),
        )
        for name in self.agent_names:
            worker = AgentWorker(BUILTIN_AGENTS[name](self.services))
            await stack.enter_async_context(worker)
            self.workers.append(worker)
        from agents.mcp_bridge import load_bridged_tools

        await load_bridged_tools(self.services)  # tools of attached outside MCP servers join the catalog
        fallback = None
        if settings.llm_model.strip():
            from assistant.llm import LLMFallback  # litellm itself is imported on first use only

            fallback = LLMFallback(settings, self.services)
        if self._warm_embeddings:
            embedder_from_settings(settings).warm()
            if fallback is not None:  # the LLM's tool index and the model load now, not on first use
                stack.callback(fallback.warm().cancel)
        self.kommandant = Kommandant(
            self.services, Recognizer(catalog, timezone=settings.timezone), fallback=fallback
        )
        if self._scheduler:
            from assistant.scheduler import Scheduler

            self.scheduler = await stack.enter_async_context(Scheduler(self.kommandant))

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()
