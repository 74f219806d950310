"""The MCP server for IDE assistants: the catalog's tools, an ``ask`` tool, resources and prompts, over
stdio (``kommandant mcp``) and streamable HTTP (``kommandant mcp --http``, ``/mcp`` in ``kommandant up``)."""

from mcp_server.server import Caller, KommandantMCP, error_result

__all__ = ["Caller", "KommandantMCP", "error_result"]
