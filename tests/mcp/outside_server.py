"""A small outside MCP server (the kind people attach with `kommandant worker --mcp`), run over stdio."""

from mcp.server.fastmcp import FastMCP
from mcp.types import ToolAnnotations

server = FastMCP("Outside Tools")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool(name="Shout-Text")
def shout(text: str) -> str:
    """Say it louder."""
    return text.upper() + "!"


@server.tool(annotations=ToolAnnotations(destructiveHint=True))
def wipe(path: str) -> str:
    """Pretend to delete a folder (destructive: Kommandant asks a person first)."""
    return f"wiped {path}"


@server.tool()
def broken() -> str:
    """Always fails."""
    raise ValueError("the disk is on fire")


if __name__ == "__main__":
    server.run("stdio")
