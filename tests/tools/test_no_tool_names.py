"""No built-in tool's name is written outside ``tools/`` and ``tests/``: the rest asks the catalog.

Every module that ships (the packages and modules ``pyproject.toml`` installs, ``tools`` aside) is read
as text, code, strings, comments and docstrings alike, for each tool name as a whole word.
"""

from __future__ import annotations

import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

from tools import builtin_catalog

ROOT = Path(__file__).resolve().parents[2]


def shipped_modules() -> list[Path]:
    """The ``.py`` files of the installed packages and modules, except the catalog's own."""
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    patterns = setup["packages"]["find"]["include"]
    files = [ROOT / f"{module}.py" for module in setup.get("py-modules", [])]
    for package in sorted(p.parent for p in ROOT.glob("*/__init__.py")):
        if package.name != "tools" and any(fnmatch(package.name, pattern) for pattern in patterns):
            files += sorted(package.rglob("*.py"))
    return files


def test_the_scan_covers_the_packages() -> None:
    scanned = {path.relative_to(ROOT).parts[0] for path in shipped_modules()}
    assert {"assistant", "intents", "agents", "bus", "mcp_server", "storage", "settings.py"} <= scanned
    assert "tools" not in scanned and "tests" not in scanned


def test_no_tool_name_outside_tools_and_tests() -> None:
    names = builtin_catalog().names()
    # A one-word name ("help") is also an English word: only its quoted form is a use of the tool's name.
    compound = [name for name in names if "_" in name]
    plain = [name for name in names if "_" not in name]
    alternatives = [r"\b(" + "|".join(map(re.escape, compound)) + r")\b"]
    alternatives += [rf"""(?<=["'])({re.escape(name)})(?=["'])""" for name in plain]
    word = re.compile("|".join(alternatives))
    hits = [
        f"{path.relative_to(ROOT)}:{number}: {found.group(0)}"
        for path in shipped_modules()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        for found in word.finditer(line)
    ]
    assert not hits, "tool names outside tools/ (ask the catalog instead):\n" + "\n".join(hits)
