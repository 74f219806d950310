"""A web server that finishes its chat turns when it is told to stop (SIGTERM, Ctrl-C).

uvicorn's own graceful shutdown waits for HTTP requests under way (an MCP call, ``POST /api/turns``), but
it closes every websocket at once (code 1012). A chat turn is no request: Chainlit runs it as a task of
the Socket.IO session, and its reply goes out over that websocket. So a turn running when the server is
stopped would lose its reply, and the lifespan would then close the bus and database under it.

``DrainingServer`` first stops listening (no new connections), closes the ``TurnGate`` (a new message
is answered "the server is stopping" instead of starting a turn), waits up to a grace period for the
turns under way, and only then lets uvicorn close the sockets and run the lifespan's shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from collections.abc import Callable

import uvicorn

log = logging.getLogger(__name__)
POLL = 0.1
"""Seconds between looks at whether a second Ctrl-C asked to stop at once."""
FLUSH_TICK = 0.01
FLUSH_SECONDS = 1.0
"""Longest wait for the sockets to send what finished turns queued."""
LINGER_SECONDS = 15.0
"""Longest the process may linger once the server has shut down completely but ``run`` has not returned:
the loop's teardown joins the default executor's threads with no timeout (Python 3.11), and in about one
load-test run of four one of them kept a fully stopped server alive."""


class TurnGate:
    """The chat turns under way in this process; once closed it admits no new one.

    A turn is counted as the whole task Chainlit runs it in, not only our ``on_message``: that task also
    sends the page its ``task_end`` (the turn is over, the input unlocks) after the hook returns."""

    def __init__(self) -> None:
        self.closed = False
        """Set when the server stops: new turns are refused."""
        self._tasks: set[asyncio.Task[object]] = set()

    @property
    def running(self) -> int:
        """Turns under way now."""
        return len(self._tasks)

    def admit(self) -> bool:
        """At the start of a turn, in its task: count it until the task ends and return True, or return
        False once the gate is closed (the caller tells the person to send it again)."""
        if self.closed:
            return False
        task = asyncio.current_task()
        if task is not None and task not in self._tasks:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return True

    async def close(self, grace: float, give_up: Callable[[], bool] = lambda: False) -> int:
        """Admit no new turn and wait up to ``grace`` seconds for those under way, or until ``give_up()``
        says to stop waiting. Returns how many turns are still running."""
        self.closed = True
        deadline = time.monotonic() + grace
        while self._tasks and not give_up() and (left := deadline - time.monotonic()) > 0:
            await asyncio.wait(set(self._tasks), timeout=min(POLL, left))
        return self.running


async def flush_sockets(within: float) -> None:
    """Wait until every Socket.IO connection has handed its queued packets to its websocket (the last
    reply and ``task_end`` of a finished turn), for at most ``within`` seconds, then close the clients
    still on long-polling: a pending poll would otherwise hold uvicorn's wait for open HTTP connections
    until its next ping (25 s). Websockets are uvicorn's to close (closing them here races its own close,
    which then fails on a socket already closing)."""
    from chainlit.server import sio

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if all(socket.queue.empty() for socket in list(sio.eio.sockets.values())):
            await asyncio.sleep(FLUSH_TICK)  # the writer that took the last packet sends it
            break
        await asyncio.sleep(FLUSH_TICK)
    polling = [s for s in list(sio.eio.sockets.values()) if not s.upgraded and not s.upgrading]
    try:
        async with asyncio.timeout(within):
            for client in polling:
                await client.close(wait=False)
    except Exception as err:  # they close with the server anyway
        log.warning("could not close the long-polling chat clients cleanly: %s", err)


class DrainingServer(uvicorn.Server):
    """uvicorn's server, whose shutdown first lets the chat turns under way finish (see the module)."""

    def __init__(self, config: uvicorn.Config, gate: Callable[[], TurnGate | None], grace: float) -> None:
        super().__init__(config)
        self.gate = gate
        self.grace = grace
        self.returned = threading.Event()
        """Set by the caller once ``run`` has returned (or raised): the watchdog then stands down."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Stop listening, finish the turns under way (up to ``grace`` s; a second Ctrl-C stops the wait),
        then uvicorn's own shutdown: connections closed, HTTP requests finished, the lifespan ended."""
        for server in self.servers:
            server.close()
        gate = self.gate()
        if gate is not None:
            if gate.running:
                log.info(
                    "Stopping: finishing %d chat turn(s) under way (up to %g s)", gate.running, self.grace
                )
            left = await gate.close(self.grace, give_up=lambda: self.force_exit)
            if left:
                log.warning("Stopping with %d chat turn(s) still running after %g s", left, self.grace)
            await flush_sockets(FLUSH_SECONDS)
        await super().shutdown(sockets)
        threading.Thread(target=self._exit_if_lingering, name="linger-watchdog", daemon=True).start()

    def _exit_if_lingering(self) -> None:
        """Everything is closed (sockets, bus, database): if ``run`` still has not returned after
        ``LINGER_SECONDS``, a stuck background thread holds the process, so leave without it."""
        if not self.returned.wait(LINGER_SECONDS):
            log.warning("The server has stopped, but a background thread did not finish; exiting anyway")
            logging.shutdown()
            os._exit(0)


__all__ = ["DrainingServer", "TurnGate", "flush_sockets"]
