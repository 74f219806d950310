"""``kommandant doctor``: check each part Kommandant depends on and say how to fix what is wrong."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Literal

from settings import Settings

Status = Literal["ok", "warn", "fail", "off"]


@dataclass(frozen=True, slots=True)
class Check:
    """The outcome of one check: what, how it went, and what to do about it."""

    name: str
    status: Status
    detail: str
    fix: str = ""


async def check_database(settings: Settings) -> list[Check]:
    """Reach the database, check pgvector and the schema revision."""
    from storage import Database, PgvectorMissingError, StorageError
    from storage.migrate import current_revision, head_revision

    where = (
        "embedded PostgreSQL in " + str(settings.embedded_db_dir)
        if settings.database_url is None
        else "KOMMANDANT_DATABASE_URL"
    )
    db = Database.from_settings(settings, migrate=False)
    try:
        await db.start()
    except PgvectorMissingError as err:
        return [
            Check("database", "ok", f"reachable ({where})"),
            Check("pgvector", "fail", str(err), "install pgvector on that server"),
        ]
    except StorageError as err:
        return [
            Check(
                "database",
                "fail",
                str(err),
                "fix KOMMANDANT_DATABASE_URL or unset it for the embedded database",
            )
        ]
    try:
        from sqlalchemy import text

        async with db.engine.connect() as conn:
            version = await conn.scalar(text("SHOW server_version"))
            vector = await conn.scalar(text("SELECT extversion FROM pg_extension WHERE extname = 'vector'"))
        current, head = await current_revision(db.engine), head_revision()
    finally:
        await db.close()
    schema = (
        Check("schema", "ok", f"at revision {current}")
        if current == head
        else Check(
            "schema", "warn", f"at revision {current}, code expects {head}", "run: kommandant db upgrade"
        )
    )
    return [
        Check("database", "ok", f"PostgreSQL {version} ({where})"),
        Check("pgvector", "ok", f"version {vector}"),
        schema,
    ]


async def check_broker(settings: Settings) -> Check:
    """Reach RabbitMQ when one is configured."""
    if settings.amqp_url is None:
        return Check("broker", "ok", "in-process bus (embedded mode: every agent runs in this process)")
    import asyncio

    import aio_pika

    from storage import redact

    url = settings.amqp_url.get_secret_value()
    try:
        async with asyncio.timeout(5):
            connection = await aio_pika.connect(url)
            await connection.close()
    except Exception as err:
        return Check(
            "broker",
            "fail",
            f"cannot reach RabbitMQ at {redact(url)}: {err or type(err).__name__}",
            "start RabbitMQ or fix KOMMANDANT_AMQP_URL",
        )
    return Check("broker", "ok", f"RabbitMQ at {redact(url)}")


def check_models() -> list[Check]:
    """Which speech and embedding engines are installed (models are checked by ``kommandant models``)."""
    engines = {
        "faster-whisper (speech to text)": "faster_whisper",
        "vosk (streaming speech)": "vosk",
        "piper (speech out)": "piper",
        "sentence-transformers (embeddings)": "sentence_transformers",
    }
    fix = "reinstall Kommandant: make install (or pip install -e .)"
    return [
        Check(name, "ok", "installed")
        if importlib.util.find_spec(module)
        else Check(name, "warn", "not installed", fix)
        for name, module in engines.items()
    ]


async def check_llm(settings: Settings) -> Check:
    """Reach the LLM server for the fallback and chat answers."""
    if not settings.llm_model:
        return Check("llm", "off", "KOMMANDANT_LLM_MODEL is empty: no LLM fallback; templates still work")
    if not settings.llm_model.startswith(("ollama/", "ollama_chat/")):
        return Check("llm", "ok", f"{settings.llm_model} (provider reachability is checked on first use)")
    import httpx

    model = settings.llm_model.split("/", 1)[1]
    try:
        async with httpx.AsyncClient(timeout=3) as client:
            response = await client.get(settings.ollama_url.rstrip("/") + "/api/tags")
            response.raise_for_status()
            names = {m.get("name", "") for m in response.json().get("models", [])}
    except Exception as err:
        return Check(
            "llm",
            "warn",
            f"Ollama not reachable at {settings.ollama_url} ({type(err).__name__})",
            "start Ollama (ollama serve), set KOMMANDANT_OLLAMA_URL, "
            "or set KOMMANDANT_LLM_MODEL= to turn it off",
        )
    if not any(n == model or n.startswith(model + ":") for n in names):
        return Check("llm", "warn", f"Ollama is up but has no model {model}", f"run: ollama pull {model}")
    return Check("llm", "ok", f"{settings.llm_model} at {settings.ollama_url}")


async def check_notion(settings: Settings) -> list[Check]:
    """Reach Notion with the token, and say how each configured source's last sync went."""
    if settings.notion_token is None:
        return [Check("notion", "off", "KOMMANDANT_NOTION_TOKEN is unset: no Notion sync")]
    from connectors.base import HealthState
    from connectors.notion import NotionConnector
    from storage import Database, StorageError
    from storage.notion import NotionRepository

    connector = NotionConnector(settings)
    try:
        health = await connector.health()
    finally:
        await connector.stop()
    checks = [
        Check("notion", "ok", f"{settings.notion_base_url}: {health.detail}")
        if health.state is HealthState.UP
        else Check(
            "notion", "fail", health.detail, "check KOMMANDANT_NOTION_TOKEN and KOMMANDANT_NOTION_BASE_URL"
        )
    ]
    try:
        async with Database.from_settings(settings, migrate=False) as db:
            statuses = {s.source_id: s for s in await NotionRepository(db.sessionmaker).statuses()}
    except StorageError:
        return checks  # the database check above says what is wrong
    from agents.notion.client import notion_id

    for ref in (*settings.notion_data_sources, *settings.notion_pages):
        status = statuses.get(notion_id(ref))
        name = f"notion sync {ref[:13]}"
        if status is None or status.last_run_at is None:
            checks.append(Check(name, "warn", "never synced", "run: kommandant notion sync"))
            continue
        when = status.last_run_at.strftime("%Y-%m-%d %H:%M UTC")
        detail = (
            f"last run {when}: {status.pages} pages, {status.imported} imported, {status.removed} removed"
        )
        if status.conflicts:
            detail += f", {status.conflicts} write-back conflicts"
        if status.errors:
            checks.append(Check(name, "warn", f"{detail}; {status.errors[-1]}", "see docs/notion.md"))
        else:
            checks.append(Check(name, "ok", detail))
    return checks


async def check_llm_speed(settings: Settings) -> Check:
    """Time the configured model (first token, tokens per second) and say whether a fallback turn fits
    in KOMMANDANT_LLM_TIMEOUT."""
    from assistant.llm import LLMUnavailableError, measure

    try:
        speed = await measure(settings)
    except LLMUnavailableError as err:
        return Check("llm speed", "warn", str(err), "see the llm line above")
    needed = speed.fallback_seconds()
    detail = (
        f"first token {speed.first_token:.1f} s, {speed.tokens_per_second:.1f} tokens/s: a fallback turn "
        f"takes about {needed:.0f} s of the {settings.llm_timeout:g} s KOMMANDANT_LLM_TIMEOUT"
    )
    if needed <= settings.llm_timeout:
        return Check("llm speed", "ok", detail)
    fix = f"set KOMMANDANT_LLM_TIMEOUT={needed * 1.5:.0f}, or use a smaller or faster model"
    return Check("llm speed", "warn", detail + " (too slow)", fix)


async def run_checks(settings: Settings) -> list[Check]:
    """Every check, in the order a person would fix things."""
    checks = await check_database(settings)
    checks.append(await check_broker(settings))
    checks.extend(check_models())
    llm = await check_llm(settings)
    checks.append(llm)
    if llm.status == "ok":  # reachable (or a provider checked on first use): how fast it answers here
        checks.append(await check_llm_speed(settings))
    checks.extend(await check_notion(settings))
    return checks
