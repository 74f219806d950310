"""Bot manifests: one small TOML file per bot in a folder (``bots/*.toml``), so bots live in version
control. Loading is pure (files in, ``BotConfig``s or one error naming each bad file and field out);
``sync_folder`` writes the result into the registry in one transaction and audits it.

A manifest::

    # bots/crawler.toml -- the bot is called "crawler" (the file name) unless `name` says otherwise
    description = "Crawls the docs site every night"
    command = ["python", "crawl.py", "--site", "docs"]   # a list: it never goes through a shell
    cwd = "crawler"            # relative to the manifest folder
    restart = "on-failure"     # no | on-failure | always
    max_restarts = 5
    memory_mb = 200            # RSS of the whole process tree
    cpu_seconds = 3600         # CPU time per run (RLIMIT_CPU)
    cpu_percent = 50           # share of one core, watched
    secrets = ["API_TOKEN"]    # env entries masked in logs and never shown

    [env]
    API_TOKEN = "..."
"""

from __future__ import annotations

import asyncio
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agents.errors import AgentError
from storage.audit import AuditLog
from storage.bots import BotConfig, BotRegistry, ManifestSync

FIELDS = {
    "name": "name",
    "description": "description",
    "command": "command",
    "cwd": "cwd",
    "env": "env",
    "secrets": "secret_keys",
    "memory_mb": "memory_mb",
    "cpu_seconds": "cpu_seconds",
    "cpu_percent": "cpu_percent",
    "restart": "restart",
    "max_restarts": "max_restarts",
}
"""Manifest keys and the ``BotConfig`` field each fills."""
_KEY_OF = {field: key for key, field in FIELDS.items()}
MAX_MANIFEST_BYTES = 256 * 1024


class ManifestError(AgentError):
    """One or more manifests are not valid; the message names each file and field."""


@dataclass(frozen=True, slots=True)
class Manifest:
    """One bot read from one file."""

    path: Path
    config: BotConfig


def load_manifest(path: Path) -> Manifest:
    """Read one manifest; ``ManifestError`` names the file and the field that is wrong."""
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise ManifestError(f"{path}: larger than {MAX_MANIFEST_BYTES // 1024} KB; is it a manifest?")
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ManifestError(f"{path}: cannot be read ({err.strerror or err}).") from err
    except UnicodeDecodeError as err:
        raise ManifestError(f"{path}: not UTF-8 text.") from err
    except tomllib.TOMLDecodeError as err:
        raise ManifestError(f"{path}: not valid TOML: {err}.") from err
    return Manifest(path, manifest_config(data, path))


def manifest_config(data: dict[str, Any], path: Path) -> BotConfig:
    """A manifest's table as a ``BotConfig``: the name defaults to the file name, ``cwd`` is relative to
    the manifest's folder."""
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise ManifestError(
            f"{path}: {unknown[0]}: not a manifest field (known: {', '.join(sorted(FIELDS))})."
        )
    if isinstance(data.get("command"), str):
        raise ManifestError(
            f'{path}: command: give a list of program and arguments, e.g. ["python", "bot.py"]; '
            "a command line is never run through a shell."
        )
    values = {FIELDS[key]: value for key, value in data.items()}
    values.setdefault("name", path.stem)
    if isinstance(values.get("cwd"), str):
        values["cwd"] = str((path.parent / values["cwd"]).resolve())
    try:
        return BotConfig.model_validate(values)
    except ValidationError as err:
        first = err.errors()[0]
        loc = [str(part) for part in first["loc"]]
        where = ".".join([_KEY_OF.get(loc[0], loc[0]), *loc[1:]]) if loc else "manifest"
        raise ManifestError(f"{path}: {where}: {first['msg']}.") from err


def load_folder(folder: Path) -> list[Manifest]:
    """Every ``*.toml`` in ``folder`` (none when it does not exist), sorted by file name. All or nothing:
    ``ManifestError`` lists every bad file, and two files naming the same bot."""
    if not folder.is_dir():
        return []
    manifests: list[Manifest] = []
    problems: list[str] = []
    for path in sorted(folder.glob("*.toml")):
        try:
            manifests.append(load_manifest(path))
        except ManifestError as err:
            problems.append(str(err))
    first: dict[str, Path] = {}
    for manifest in manifests:
        seen = first.setdefault(manifest.config.name, manifest.path)
        if seen != manifest.path:
            problems.append(f"{manifest.path}: name: {manifest.config.name!r} is the bot of {seen} already.")
    if problems:
        raise ManifestError("\n".join(problems))
    return manifests


async def sync_folder(
    registry: BotRegistry, audit: AuditLog, folder: Path, *, host: str | None, actor: str
) -> ManifestSync:
    """Load the manifests of ``folder`` and make the registry match them (one transaction), then audit
    what changed. A bad manifest changes nothing and raises ``ManifestError``."""
    folder = await asyncio.to_thread(folder.resolve)
    manifests = await asyncio.to_thread(load_folder, folder)
    sync = await registry.sync_manifests([(m.config, str(m.path)) for m in manifests], str(folder), host=host)
    if sync.added or sync.updated or sync.removed:
        await audit.append(
            "bots_reloaded",
            actor=actor,
            data={
                "folder": str(folder),
                "added": list(sync.added),
                "updated": list(sync.updated),
                "removed": list(sync.removed),
                "kept_running": list(sync.kept_running),
            },
        )
    return sync
