"""The layout DESIGN.md draws: imports run one way, no package imports its caller, no import circles.

Every import counts, lazy ones inside functions and ``TYPE_CHECKING`` ones too: a circle that only
closes at run time is still a circle to whoever reads the code.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = (
    "assistant", "intents", "tools", "bus", "agents", "embeddings", "mcp_server", "voice", "storage",
    "telemetry", "connectors",
)  # fmt: skip
MODULES = ("settings",)
NEVER_IMPORT_ASSISTANT = ("bus", "agents", "tools", "intents", "voice", "storage", "embeddings", "telemetry")


def _modules() -> dict[str, Path]:
    found = {name: ROOT / f"{name}.py" for name in MODULES}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imports(path: Path, known: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """The project modules ``path`` imports, with the line of each import."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known:
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                if submodule in known:
                    yield submodule, node.lineno
                elif node.module in known:
                    yield node.module, node.lineno


def _graph() -> dict[str, set[str]]:
    known = _modules()
    return {name: {target for target, _ in _imports(path, known)} - {name} for name, path in known.items()}


def test_lower_packages_never_import_the_assistant() -> None:
    known = _modules()
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {target}"
        for name, path in known.items()
        if name.split(".")[0] in NEVER_IMPORT_ASSISTANT
        for target, line in _imports(path, known)
        if target.split(".")[0] == "assistant"
    ]
    assert not offenders, "\n".join(offenders)


def test_agents_never_import_connectors() -> None:
    """Connectors are front doors; the agents behind them (notion, slack) serve tools from the bus."""
    known = _modules()
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {target}"
        for name, path in known.items()
        if name.split(".")[0] == "agents"
        for target, line in _imports(path, known)
        if target.split(".")[0] == "connectors"
    ]
    assert not offenders, "\n".join(offenders)


def test_nothing_imports_the_chainlit_app() -> None:
    graph = _graph()
    importers = sorted(name for name, targets in graph.items() if "assistant.web.app" in targets)
    assert importers == [], importers


def test_no_import_circles() -> None:
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert not circles, circles
