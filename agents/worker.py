"""Serve an agent from the bus: validate arguments, run the handler, answer; announce and heartbeat."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid

from agents.base import Agent, CallContext
from agents.errors import AgentError
from bus import Serving, ToolCall, ToolResult
from storage.errors import ConflictError, NotFoundError
from storage.registry import AgentRegistry
from tools.errors import InvalidArgumentsError, UnknownToolError

log = logging.getLogger(__name__)


class AgentWorker:
    """One replica of one agent: ``async with AgentWorker(agent):`` serves until the block ends."""

    def __init__(self, agent: Agent, *, concurrency: int | None = None) -> None:
        self.agent = agent
        self.services = agent.services
        self.concurrency = concurrency or self.services.settings.worker_concurrency  # the prefetch
        self.instance_id = f"{agent.name}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._registry = AgentRegistry(self.services.database.sessionmaker)
        self._serving: Serving | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._stopped = False

    async def start(self) -> None:
        """Announce the agent, start serving its queue, then its background work and heartbeats."""
        self._stopped = False
        tools = sorted(self.agent.handlers)
        await self._registry.announce(
            self.agent.name,
            description=self.agent.description,
            tools=tools,
            instance_id=self.instance_id,
            host=socket.gethostname(),
            pid=os.getpid(),
        )
        self._serving = await self.services.bus.serve(
            self.agent.name, self.dispatch, concurrency=self.concurrency
        )
        await self.agent.start()
        await self._beat()
        self._heartbeat = asyncio.create_task(self._heartbeats(), name=f"heartbeat-{self.agent.name}")
        log.info("agent %s serving %d tools (%s)", self.agent.name, len(tools), self.instance_id)

    async def stop(self, grace: float | None = None) -> None:
        """Stop taking calls, finish the calls under way within ``grace`` seconds (default: the
        ``worker_stop_grace`` setting; later ones are requeued for another replica), then stop heartbeats
        and background work and mark the replica stopped. Calling it again does nothing."""
        if self._stopped:
            return
        self._stopped = True
        if grace is None:
            grace = self.services.settings.worker_stop_grace
        # Consumers first: background work and heartbeats keep going while the calls under way finish.
        if self._serving is not None:
            await self._serving.stop(drain=True, grace=grace)
            self._serving = None
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        await self.agent.stop()
        with contextlib.suppress(Exception):
            await self._registry.stopped(self.instance_id)
            await self.services.bus.publish(
                f"agent.stopped.{self.agent.name}", {"agent": self.agent.name, "instance": self.instance_id}
            )

    async def __aenter__(self) -> AgentWorker:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def dispatch(self, call: ToolCall) -> ToolResult:
        """Run one call. Failures a person can act on become error results; others raise (and are retried)."""
        name = self.agent.name
        handler = self.agent.handlers.get(call.tool)
        try:
            if handler is None:
                raise UnknownToolError(f"The {name} agent has no tool called {call.tool!r}.")
            arguments = self.services.catalog.get(call.tool).validate_arguments(call.arguments)
            context = CallContext(
                call_id=call.call_id,
                user=call.user,
                channel=call.channel,
                thread=call.thread,
                role=call.role,
                idempotency_key=call.idempotency_key,
            )
            async with asyncio.timeout(max(call.remaining(), 0.001)):
                output = await handler(arguments, context)
        except (AgentError, InvalidArgumentsError, UnknownToolError, NotFoundError, ConflictError) as err:
            return ToolResult.error(call.call_id, str(err), agent=name)
        except TimeoutError:
            return ToolResult.error(
                call.call_id, f"{call.tool} did not finish before its deadline.", agent=name
            )
        summary = getattr(output, "summary", None)
        text = summary() if callable(summary) else output.model_dump_json()
        return ToolResult.ok(call.call_id, text=text, structured=output.model_dump(mode="json"), agent=name)

    async def _beat(self) -> None:
        await self._registry.heartbeat(self.instance_id)
        await self.services.bus.publish(
            f"agent.heartbeat.{self.agent.name}",
            {"agent": self.agent.name, "instance": self.instance_id, "tools": sorted(self.agent.handlers)},
        )

    async def _heartbeats(self) -> None:
        interval = self.services.settings.heartbeat_interval
        while True:
            await asyncio.sleep(interval)
            try:
                await self._beat()
            except Exception:  # a database or broker blip must not stop the agent; the next beat retries
                log.warning("heartbeat of %s failed", self.agent.name, exc_info=True)
