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


async def run_checks(settings: Settings) -> list[Check]:
    """Every check, in the order a person would fix things."""
    checks = await check_database(settings)
    checks.append(await check_broker(settings))
    checks.extend(check_models())
    checks.append(await check_llm(settings))
    return checks
