"""The bots agent on both buses, real processes and real Postgres: tools over the bus and through
``Kommandant.handle``, a memory-limit kill reaching the starting channel, reconcile after a crash,
and calls for a bot pinned to another executor."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import psutil
import pytest
import pytest_asyncio
from pydantic import SecretStr

from agents.bots.agent import STALE_REASON, STATE_TOPIC, executor_queue, state_topic
from assistant.events import ApprovalRequired, ReplyDone, ToolFinished, Turn
from assistant.runtime import Runtime
from assistant.web.render import bot_state_message
from bus import ToolCall, ToolResult
from settings import Settings
from storage import Database
from storage.bots import BotConfig, BotRegistry, RunChange

PY = sys.executable
AGENTS = ["bots", "system"]
T = TypeVar("T")

SLEEPER = "import sys, time\nprint('hello from', sys.argv[1], flush=True)\nwhile True: time.sleep(0.2)"
HOG = (
    "import sys, time\nheld = []\n"
    "while True:\n    held.append(b'x' * 10_000_000)\n    print(len(held) * 10, 'MB', flush=True)\n"
    "    time.sleep(0.1)"
)


async def eventually(check: Callable[[], Awaitable[T | None]], seconds: float = 15.0) -> T:
    async with asyncio.timeout(seconds):
        while True:
            if value := await check():
                return value
            await asyncio.sleep(0.05)


def configured(settings: Settings, kind: str, amqp_url: str | None, prefix: str, **extra: Any) -> Settings:
    overrides: dict[str, Any] = {
        "heartbeat_interval": 0.5,
        "call_timeout": 20.0,
        "bots_grace": 1.0,
        "llm_model": "",
        **extra,
    }
    if kind == "rabbit":
        overrides.update(amqp_url=SecretStr(amqp_url or ""), bus_prefix=prefix)
    return settings.model_copy(update=overrides)


async def delete_queues(settings: Settings, *hosts: str) -> None:
    if settings.amqp_url is None:
        return
    from bus.rabbit import Topology, delete_topology

    queues = [*AGENTS, *(executor_queue(h) for h in hosts)]
    await delete_topology(settings.amqp_url.get_secret_value(), Topology(settings.bus_prefix), queues)


@pytest.fixture(params=["local", pytest.param("rabbit", marks=pytest.mark.rabbit)])
def bus_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def bots_settings(
    request: pytest.FixtureRequest, bus_kind: str, settings: Settings, bus_prefix: str
) -> Settings:
    url = request.getfixturevalue("amqp_url") if bus_kind == "rabbit" else None
    return configured(settings, bus_kind, url, bus_prefix)


@pytest_asyncio.fixture(loop_scope="session")
async def runtime(bots_settings: Settings, db: Database) -> AsyncIterator[Runtime]:
    async with Runtime(bots_settings, agents=AGENTS, database=db) as rt:
        yield rt
    await delete_queues(bots_settings, bots_settings.bots_host)


async def register(db: Database, name: str, code: str, *args: str, **options: Any) -> None:
    config = BotConfig(name=name, command=(PY, "-c", code, *args), **options)
    await BotRegistry(db.sessionmaker).add(config)


async def call(
    rt: Runtime,
    tool: str,
    user: str = "ann",
    channel: str = "cli",
    thread: str | None = None,
    **arguments: Any,
) -> ToolResult:
    assert rt.services is not None
    request = ToolCall.create(
        tool, arguments, timeout=20, user=user, channel=channel, thread=thread, role="admin"
    )
    return await rt.services.bus.call("bots", request)


def structured(result: ToolResult) -> dict[str, Any]:
    assert not result.is_error, result.text
    assert result.result.structuredContent is not None
    return result.result.structuredContent


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def turn(rt: Runtime, text: str, **who: Any) -> list[Any]:
    assert rt.kommandant is not None
    person = {"user": "ann", "channel": "cli", "role": "admin", **who}
    return [e async for e in rt.kommandant.handle(Turn(text=text, **person))]


def reply(events: list[Any]) -> str:
    [done] = [e for e in events if isinstance(e, ReplyDone)]
    return str(done.text)


async def test_start_status_logs_restart_stop_over_the_bus(runtime: Runtime, db: Database) -> None:
    await register(db, "echoer", SLEEPER, "echoer")
    started = structured(await call(runtime, "bots_start", name="echoer"))
    assert (started["action"], started["bot"]["status"], started["changed"]) == ("start", "running", True)
    first_pid = started["bot"]["pid"]
    assert alive(first_pid)
    again = structured(await call(runtime, "bots_start", name="echoer"))
    assert (again["changed"], again["bot"]["pid"]) == (False, first_pid)

    async def measured() -> dict[str, Any] | None:
        [bot] = structured(await call(runtime, "bots_status", name="echoer"))["bots"]
        return bot if bot["rss"] and bot["uptime"] else None

    status = await eventually(measured)
    assert status["status"] == "running" and status["rss"] > 1_000_000 and status["cpu_percent"] is not None

    async def hello() -> list[str]:
        lines = structured(await call(runtime, "bots_logs", name="echoer", lines=5))["lines"]
        return [line for line in lines if "hello from echoer" in line]

    assert await eventually(hello)

    restarted = structured(await call(runtime, "bots_restart", name="echoer"))
    second_pid = restarted["bot"]["pid"]
    assert second_pid != first_pid and alive(second_pid)
    await eventually(lambda: asyncio.to_thread(lambda: not alive(first_pid)))

    stopped = structured(await call(runtime, "bots_stop", name="echoer", user="bob"))
    assert (stopped["action"], stopped["bot"]["status"]) == ("stop", "stopped")
    assert not alive(second_pid)
    registry = BotRegistry(db.sessionmaker)

    async def runs_settled() -> list[Any] | None:
        runs = await registry.runs("echoer")
        return runs if all(r.ended_at for r in runs) and runs[0].status == "stopped" else None

    runs = await eventually(runs_settled)
    assert [(r.pid, r.status, r.reason) for r in runs] == [
        (second_pid, "stopped", "stopped by bob"),
        (first_pid, "stopped", "restarted by request"),
    ]
    assert (await registry.get("echoer")).desired_state == "stopped"
    assert not (await call(runtime, "bots_stop", name="echoer")).is_error  # stopping it again is fine


async def test_unknown_and_invalid_names_are_refused_clearly(runtime: Runtime, db: Database) -> None:
    await register(db, "alpha", SLEEPER, "alpha")
    unknown = await call(runtime, "bots_start", name="zed")
    assert unknown.is_error and unknown.text == "There is no bot called 'zed'. Known bots: alpha."
    for shell in ("x; touch /tmp/pwned", "$(touch /tmp/pwned)", "`touch /tmp/pwned`"):
        refused = await call(runtime, "bots_start", name=shell)
        assert refused.is_error and "Invalid arguments for bots_start: name" in refused.text
    spaced = await call(runtime, "bots_logs", name="alpha beta")
    assert spaced.is_error and "is not a bot name: use letters, digits, '-' and '_'" in spaced.text
    listed = structured(await call(runtime, "bots_list"))
    assert [(b["name"], b["status"]) for b in listed["bots"]] == [("alpha", "registered")]


async def test_start_status_logs_restart_stop_through_the_kommandant(runtime: Runtime, db: Database) -> None:
    await register(db, "ticker", SLEEPER, "ticker")
    events = await turn(runtime, "start the ticker bot")
    assert [(e.tool, e.ok) for e in events if isinstance(e, ToolFinished)] == [("bots_start", True)]
    assert reply(events) == "Started the ticker bot."
    status = await turn(runtime, "what is the status of the ticker bot")
    assert reply(status).startswith("The ticker bot is running (up ")
    [finished] = [e for e in status if isinstance(e, ToolFinished)]
    assert finished.structured is not None and finished.structured["bots"][0]["pid"]
    assert runtime.services is not None
    table = runtime.services.catalog.get(finished.tool).result_table(finished.structured)
    assert table is not None and table.columns[:3] == ("bot", "state", "pid")
    assert table.rows[0][:2] == ("ticker", "running") and table.markdown().count("\n") == 2

    async def logged() -> str | None:
        text = reply(await turn(runtime, "show the logs of the ticker bot"))
        return text if text.startswith("The last 1 lines") else None

    assert await eventually(logged)
    assert reply(await turn(runtime, "restart the ticker bot")) == "Restarted the ticker bot."

    seen: list[Any] = []

    async def stop() -> None:
        async for event in runtime.kommandant.handle(  # type: ignore[union-attr]
            Turn(text="stop the ticker bot", user="ann", channel="cli", role="admin")
        ):
            seen.append(event)

    async def asked() -> ApprovalRequired | None:
        return next((e for e in seen if isinstance(e, ApprovalRequired)), None)

    task = asyncio.create_task(stop())
    approval = await eventually(asked)
    assert runtime.kommandant is not None
    await runtime.kommandant.decide(
        approval.approval_id, approve=True, user="root", role="admin", channel="cli"
    )
    await asyncio.wait_for(task, 20)
    assert "Stopped the ticker bot." in reply(seen)
    run = (await BotRegistry(db.sessionmaker).get("ticker")).last_run
    assert run is not None and (run.status, run.reason) == ("stopped", "stopped by ann")


async def test_a_memory_limit_kill_ends_the_run_with_why_and_tells_the_starting_channel(
    runtime: Runtime, db: Database
) -> None:
    assert runtime.services is not None
    await register(db, "hog", HOG, memory_mb=50, restart="no")
    bus = runtime.services.bus
    async with bus.subscribe(state_topic("web")) as told, bus.subscribe(STATE_TOPIC) as every:
        started = structured(
            await call(runtime, "bots_start", name="hog", user="ann", channel="web", thread="t-42")
        )
        pid = started["bot"]["pid"]

        async def failed() -> Any:
            event = await told.get(timeout=20)
            return event if event.payload["state"] == "failed" else None

        event = await eventually(failed, seconds=25)
    assert event.payload["user"] == "ann" and event.payload["bot"] == "hog"
    assert event.payload["reason"].startswith("killed: memory limit (")
    assert event.payload["text"].startswith("The hog bot failed: killed: memory limit (")
    assert not alive(pid)
    # the web chat shows it in the thread that started the bot, to the person who did
    shown = bot_state_message(event.payload, "ann", "t-42")
    assert shown is not None and shown.startswith("🤖 The hog bot failed: killed: memory limit (")
    assert bot_state_message(event.payload, "bob", "t-42") is None
    assert bot_state_message(event.payload, "ann", "another-thread") is None
    general = []
    while True:
        try:
            general.append((await every.get(timeout=0.1)).payload["state"])
        except TimeoutError:
            break
    assert general[:2] == ["starting", "running"] and general[-1] == "failed"

    run = (await BotRegistry(db.sessionmaker).get("hog")).last_run
    assert run is not None and run.status == "failed" and run.ended_at is not None
    assert run.reason is not None and run.reason.startswith("killed: memory limit (")
    assert run.signal == 9 and run.peak_rss > 50 * 1024 * 1024
    assert "memory limit" in (await call(runtime, "bots_status", name="hog")).text


async def test_reconcile_stops_leftovers_closes_stale_runs_and_starts_what_should_run(
    db: Database, settings: Settings
) -> None:
    """A crashed executor left a bot's process running and its run open: the next executor on that
    host stops the leftover (found by pid and start time), closes the run and starts the bot again."""
    marker = f"leftover-{uuid.uuid4().hex[:8]}"
    await register(db, "keeper", SLEEPER, marker)
    registry = BotRegistry(db.sessionmaker)
    host = settings.bots_host
    await registry.want("keeper", "running", host=host, user="ann", channel="cli")
    orphan = await asyncio.create_subprocess_exec(PY, "-c", SLEEPER, marker, start_new_session=True)
    try:
        started = psutil.Process(orphan.pid).create_time()
        await registry.record("keeper", RunChange("running", pid=orphan.pid, create_time=started), host=host)
        await registry.record(
            "keeper", RunChange("running", pid=4_000_000, create_time=1.0), host="elsewhere"
        )
        async with Runtime(configured(settings, "local", None, ""), agents=["bots"], database=db):
            assert await asyncio.wait_for(orphan.wait(), 10) is not None
            runs = await registry.runs("keeper")
            assert runs[-1].pid == orphan.pid and runs[-1].status == "exited"
            assert runs[-1].reason == f"{STALE_REASON}; its leftover processes were stopped"

            async def running_again() -> Any:
                latest = (await registry.runs("keeper"))[0]
                return latest if latest.status == "running" else None

            current = await eventually(running_again)
            assert current.pid not in (None, orphan.pid) and current.ended_at is None and alive(current.pid)
            elsewhere = [r for r in runs if r.host == "elsewhere"]
            assert elsewhere and elsewhere[0].ended_at is None  # another executor's run is not ours to close
        assert not alive(current.pid)  # a graceful stop takes the bot down ...
        assert (await registry.get("keeper")).desired_state == "running"  # ... and it comes back next time
    finally:
        if orphan.returncode is None:
            orphan.kill()
            await orphan.wait()


async def test_a_bot_pinned_to_another_executor_is_refused_in_embedded_mode(
    db: Database, settings: Settings
) -> None:
    """Over RabbitMQ the call would be forwarded (next test); the in-process bus has one executor."""
    await register(db, "far", SLEEPER, "far")
    await BotRegistry(db.sessionmaker).want("far", "running", host="ghost-host")
    async with Runtime(configured(settings, "local", None, ""), agents=["bots"], database=db) as rt:
        refused = await call(rt, "bots_start", name="far")
    assert refused.is_error and "pinned to the executor on ghost-host" in refused.text
    assert "embedded mode" in refused.text


@pytest.mark.rabbit
async def test_calls_for_a_pinned_bot_are_forwarded_to_its_executor(
    db: Database, settings: Settings, amqp_url: str, bus_prefix: str
) -> None:
    one = configured(settings, "rabbit", amqp_url, bus_prefix, bots_host="exec-one", call_timeout=6.0)
    two = configured(settings, "rabbit", amqp_url, bus_prefix, bots_host="exec-two", call_timeout=6.0)
    await register(db, "pinned", SLEEPER, "pinned", restart="no")
    registry = BotRegistry(db.sessionmaker)
    await registry.want("pinned", "running", host="exec-two")
    await registry.want("pinned", "stopped", host="exec-two")
    await register(db, "lost", SLEEPER, "lost")
    await registry.want("lost", "running", host="ghost-host")
    await registry.want("lost", "stopped", host="ghost-host")
    try:
        async with (
            Runtime(one, agents=["bots"], database=db) as first,
            Runtime(two, agents=["bots"], database=db) as second,
        ):
            for _ in range(4):  # whichever executor takes the call from the shared queue
                for rt in (first, second):
                    result = structured(await call(rt, "bots_start", name="pinned"))
                    assert result["bot"]["host"] == "exec-two" and result["bot"]["status"] == "running"
            status = structured(await call(first, "bots_status", name="pinned"))
            assert status["bots"][0]["rss"] > 0  # live figures: from the executor that runs it
            runs = await registry.runs("pinned")
            assert {r.host for r in runs} == {"exec-two"} and len(runs) == 1
            lost = await call(first, "bots_start", name="lost")
            assert lost.is_error and "pinned to the executor on ghost-host, which did not answer" in lost.text
            stopped = structured(await call(first, "bots_stop", name="pinned"))
            assert stopped["bot"]["status"] == "stopped"
    finally:
        await delete_queues(one, "exec-one", "exec-two", "ghost-host")


async def test_bots_of_another_live_executor_on_this_host_are_left_alone(
    db: Database, settings: Settings
) -> None:
    """A one-shot `kommandant ask` beside `kommandant up` on one host must not take `up`'s bots: runs
    whose executor process still lives are not stale."""
    await register(db, "shared", SLEEPER, "shared")
    registry = BotRegistry(db.sessionmaker)
    await registry.want("shared", "running", host=settings.bots_host, user="ann", channel="cli")
    other = await asyncio.create_subprocess_exec(PY, "-c", SLEEPER, "other-executor", start_new_session=True)
    bot = await asyncio.create_subprocess_exec(PY, "-c", SLEEPER, "shared", start_new_session=True)
    try:
        executor = (other.pid, psutil.Process(other.pid).create_time())
        change = RunChange("running", pid=bot.pid, create_time=psutil.Process(bot.pid).create_time())
        await registry.record("shared", change, host=settings.bots_host, executor=executor)
        async with Runtime(configured(settings, "local", None, ""), agents=["bots"], database=db) as rt:
            assert alive(bot.pid)
            [run] = await registry.runs("shared")
            assert (run.pid, run.ended_at) == (bot.pid, None)
            refused = await call(rt, "bots_restart", name="shared")
            assert (
                refused.is_error
                and f"run by another Kommandant process on {settings.bots_host}" in refused.text
            )
            assert f"pid {other.pid}" in refused.text
    finally:
        for process in (other, bot):
            process.kill()
            await process.wait()
