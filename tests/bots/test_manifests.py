"""Bot manifests: TOML files in a folder, loaded into the registry; bad ones name the file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.bots.manifests import ManifestError, load_folder, load_manifest, sync_folder
from storage import Database
from storage.audit import AuditLog
from storage.bots import BotRegistry

CRAWLER = """
description = "Crawls the docs"
command = ["python", "crawl.py", "--site", "docs"]
cwd = "work"
restart = "always"
max_restarts = 5
memory_mb = 200
cpu_seconds = 3600
cpu_percent = 50
secrets = ["API_TOKEN"]

[env]
API_TOKEN = "s3cret-token"
LOG_LEVEL = "info"
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def test_a_manifest_becomes_a_config(tmp_path: Path) -> None:
    path = write(tmp_path, "crawler.toml", CRAWLER)
    config = load_manifest(path).config
    assert config.name == "crawler"  # from the file name
    assert config.command == ("python", "crawl.py", "--site", "docs")
    assert config.cwd == str(tmp_path / "work")  # relative to the manifest's folder
    assert (config.restart, config.max_restarts) == ("always", 5)
    assert (config.memory_mb, config.cpu_seconds, config.cpu_percent) == (200, 3600, 50)
    assert config.env == {"API_TOKEN": "s3cret-token", "LOG_LEVEL": "info"}
    assert config.secret_values == ("s3cret-token",)
    assert config.description == "Crawls the docs"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('command = ["python"]\nmemory_mb = "lots"', "bad.toml: memory_mb: Input should be a valid integer"),
        (
            'command = ["python"]\nmemory_mb = 0',
            "bad.toml: memory_mb: Input should be greater than or equal to 1",
        ),
        ('command = "python bot.py; rm -rf /"', "bad.toml: command: give a list of program and arguments"),
        ("command = []", "bad.toml: command: "),
        (
            'command = ["python"]\nrestart = "sometimes"',
            "bad.toml: restart: Input should be 'no', 'on-failure'",
        ),
        ('command = ["python"]\ncolour = "red"', "bad.toml: colour: not a manifest field"),
        ('command = ["python"]\nname = "x; touch /tmp/pwned"', "bad.toml: name: Value error, use letters"),
        (
            'command = ["python"]\n[env]\n"A B" = "1"',
            "bad.toml: env: Value error, 'A B' is not an environment",
        ),
        ('command = ["python"]\nsecrets = ["TOKEN"]', "bad.toml: secrets: Value error, secret 'TOKEN'"),
        ("command = [python]", "bad.toml: not valid TOML"),
        ('description = "no command"', "bad.toml: command: Field required"),
    ],
)
def test_a_bad_manifest_names_its_file_and_field(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, "bad.toml", text)
    with pytest.raises(ManifestError) as caught:
        load_manifest(path)
    assert str(caught.value).startswith(str(tmp_path)), caught.value
    assert expected in str(caught.value), caught.value


def test_a_folder_lists_every_problem_and_loads_nothing(tmp_path: Path) -> None:
    write(tmp_path, "good.toml", 'command = ["true"]')
    write(tmp_path, "bad.toml", 'command = ["true"]\nmax_restarts = -1')
    write(tmp_path, "twin.toml", 'name = "good"\ncommand = ["false"]')
    write(tmp_path, "notes.txt", "not a manifest")
    with pytest.raises(ManifestError) as caught:
        load_folder(tmp_path)
    problems = str(caught.value).splitlines()
    assert problems[0].startswith(f"{tmp_path}/bad.toml: max_restarts:")
    assert problems[1] == f"{tmp_path}/twin.toml: name: 'good' is the bot of {tmp_path}/good.toml already."
    assert load_folder(tmp_path / "missing") == []


async def test_reload_picks_up_new_changed_and_removed_manifests(db: Database, tmp_path: Path) -> None:
    registry, audit = BotRegistry(db.sessionmaker), AuditLog(db.sessionmaker)
    folder = tmp_path / "bots"
    write(folder, "crawler.toml", CRAWLER)
    write(folder, "mailer.toml", 'command = ["python", "mail.py"]')
    first = await sync_folder(registry, audit, folder, host="alpha", actor="bots")
    assert first.added == ("crawler", "mailer")
    crawler = await registry.get("crawler")
    assert (crawler.source, crawler.manifest_path, crawler.host) == (
        "manifest",
        str(folder / "crawler.toml"),
        "alpha",
    )

    write(folder, "crawler.toml", CRAWLER.replace("memory_mb = 200", "memory_mb = 300"))
    (folder / "mailer.toml").unlink()
    write(folder, "backup.toml", 'command = ["python", "backup.py"]\ndescription = "nightly"')
    second = await sync_folder(registry, audit, folder, host="alpha", actor="local")
    assert (second.added, second.updated, second.removed) == (("backup",), ("crawler",), ("mailer",))
    assert (await registry.get("crawler")).config.memory_mb == 300
    assert [r.name for r in await registry.all()] == ["backup", "crawler"]

    unchanged = await sync_folder(registry, audit, folder, host="alpha", actor="local")
    assert (unchanged.added, unchanged.updated, unchanged.removed) == ((), (), ())

    write(folder, "broken.toml", 'command = ["x"]\nmemory_mb = -5')
    with pytest.raises(ManifestError, match=r"broken\.toml: memory_mb"):
        await sync_folder(registry, audit, folder, host="alpha", actor="local")
    assert [r.name for r in await registry.all()] == ["backup", "crawler"]

    rows = [e for e in await audit.tail(10) if e.kind == "bots_reloaded"]
    assert [(e.actor, e.data["added"], e.data["removed"]) for e in rows] == [
        ("bots", ["crawler", "mailer"], []),
        ("local", ["backup"], ["mailer"]),
    ]
    assert "s3cret-token" not in str([e.data for e in rows])
