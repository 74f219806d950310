"""The stdio transport of ``kommandant mcp``: an IDE starts it as a subprocess; it acts as the local user."""

from __future__ import annotations

from mcp_server.server import Caller, KommandantMCP
from settings import Settings


async def serve_stdio(settings: Settings) -> None:
    """Open a Runtime (embedded by default: database and every agent in this process) and serve MCP on
    stdin/stdout until the client closes it. Logs go to stderr; stdout carries only the protocol."""
    from assistant.runtime import Runtime

    async with Runtime(settings, warm_embeddings=True) as rt:
        server = KommandantMCP(lambda: rt, local=Caller(user=settings.mcp_user, role=settings.mcp_role))
        async with server.watching():
            await server.run_stdio_async()
