"""The bot registry on real Postgres: registering, pinning, one run row per process, reconcile reads."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from storage import ConflictError, Database, NotFoundError
from storage.bots import BotConfig, BotRegistry, InvalidBotError, RunChange, check_bot_name


def config(name: str = "crawler", **extra: object) -> BotConfig:
    return BotConfig.model_validate({"name": name, "command": ["python", "crawl.py"], **extra})


@pytest.mark.parametrize("name", ["x; touch /tmp/pwned", "$(reboot)", "`id`", "a b", "", "-x", "a" * 65, "ü"])
def test_names_with_anything_but_letters_digits_dash_underscore_are_refused(name: str) -> None:
    with pytest.raises(InvalidBotError, match="not a bot name"):
        check_bot_name(name)
    with pytest.raises(ValidationError, match="name"):
        config(name)


def test_a_config_refuses_bad_values_by_field() -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"command": []}, "command"),
        ({"command": "python bot.py"}, "command"),
        ({"memory_mb": 0}, "memory_mb"),
        ({"restart": "sometimes"}, "restart"),
        ({"env": {"A B": "1"}}, "env"),
        ({"env": {"A": "1"}, "secret_keys": ["TOKEN"]}, "secret"),
        ({"colour": "red"}, "colour"),
    ]
    for bad, field in cases:
        with pytest.raises(ValidationError, match=field):
            config(**bad)


async def test_add_get_list_remove(db: Database) -> None:
    registry = BotRegistry(db.sessionmaker)
    added = await registry.add(config(memory_mb=50, description="crawls"), host=None)
    assert (added.name, added.source, added.desired_state, added.last_run) == (
        "crawler",
        "cli",
        "stopped",
        None,
    )
    await registry.add(config("backup", restart="no"))
    assert [r.name for r in await registry.all()] == ["backup", "crawler"]
    got = await registry.get("crawler")
    assert got.config.memory_mb == 50 and got.config.description == "crawls"
    with pytest.raises(ConflictError, match="registered already"):
        await registry.add(config())
    removed = await registry.remove("crawler")
    assert removed.name == "crawler"
    with pytest.raises(NotFoundError, match=r"no bot called 'crawler'. Known bots: backup"):
        await registry.get("crawler")
    with pytest.raises(InvalidBotError):
        await registry.get("x; touch /tmp/pwned")


async def test_start_pins_to_the_executor_and_another_is_refused(db: Database) -> None:
    registry = BotRegistry(db.sessionmaker)
    await registry.add(config())
    wanted = await registry.want("crawler", "running", host="alpha", user="ann", channel="web", thread="t1")
    assert (wanted.host, wanted.desired_state, wanted.started_by, wanted.started_thread) == (
        "alpha",
        "running",
        "ann",
        "t1",
    )
    with pytest.raises(ConflictError, match="pinned to the executor on alpha"):
        await registry.want("crawler", "running", host="beta")
    with pytest.raises(ConflictError, match="stop it before removing"):
        await registry.remove("crawler")
    assert [r.name for r in await registry.should_run("alpha")] == ["crawler"]
    assert await registry.should_run("beta") == []
    stopped = await registry.want("crawler", "stopped", host="alpha")
    assert stopped.desired_state == "stopped"


async def test_one_run_row_per_process_updated_on_each_transition(db: Database) -> None:
    registry = BotRegistry(db.sessionmaker)
    await registry.add(config())
    record = registry.record
    await record("crawler", RunChange("starting"), host="alpha")
    await record("crawler", RunChange("running", pid=100, create_time=1.5, peak_rss=10), host="alpha")
    first = await record(
        "crawler",
        RunChange("exited", pid=100, create_time=1.5, signal=9, reason="killed: memory limit", peak_rss=60),
        host="alpha",
    )
    await record(
        "crawler", RunChange("starting", restarts=1, reason="restart 1 of 3 in 0.50 s"), host="alpha"
    )
    second = await record("crawler", RunChange("running", pid=200, create_time=2.5, restarts=1), host="alpha")
    assert first is not None and second is not None and first.id != second.id
    assert (first.status, first.pid, first.signal, first.reason, first.peak_rss) == (
        "exited",
        100,
        9,
        "killed: memory limit",
        60,
    )
    assert first.ended_at is not None and second.ended_at is None
    open_runs = await registry.open_runs("alpha")
    assert [(r.bot, r.pid, r.create_time) for r in open_runs] == [("crawler", 200, 2.5)]
    assert await registry.open_runs("beta") == []
    assert await registry.close_runs([second.id], "executor restarted") == 1
    runs = await registry.runs("crawler")
    assert [(r.status, r.reason) for r in runs] == [
        ("exited", "executor restarted"),
        ("exited", "killed: memory limit"),
    ]
    last = (await registry.get("crawler")).last_run
    assert last is not None and last.id == second.id


async def test_a_removed_bot_records_nothing(db: Database) -> None:
    registry = BotRegistry(db.sessionmaker)
    assert await registry.record("ghost", RunChange("running", pid=1), host="alpha") is None


async def test_manifest_sync_adds_updates_removes_and_keeps_running_ones(db: Database) -> None:
    registry = BotRegistry(db.sessionmaker)
    folder = "/srv/bots"
    first = await registry.sync_manifests(
        [(config("a"), f"{folder}/a.toml"), (config("b"), f"{folder}/b.toml")], folder, host="alpha"
    )
    assert (first.added, first.updated, first.removed) == (("a", "b"), (), ())
    again = await registry.sync_manifests(
        [(config("a"), f"{folder}/a.toml"), (config("b"), f"{folder}/b.toml")], folder
    )
    assert (again.added, again.updated, again.removed) == ((), (), ())
    await registry.want("b", "running", host="alpha")
    changed = await registry.sync_manifests([(config("a", memory_mb=10), f"{folder}/a.toml")], folder)
    assert (changed.updated, changed.removed, changed.kept_running) == (("a",), (), ("b",))
    assert (await registry.get("a")).config.memory_mb == 10
    await registry.add(config("c"))
    with pytest.raises(ConflictError, match=r"/srv/bots/c.toml: a bot called 'c' is registered already"):
        await registry.sync_manifests([(config("c"), f"{folder}/c.toml")], folder)
    assert (await registry.get("c")).source == "cli"
