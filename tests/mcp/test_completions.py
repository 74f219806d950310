"""``completion/complete`` over MCP: prompt and resource-template arguments complete from live names as
the caller may see them; and every prompt and argument is described."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest_asyncio
from mcp import ClientSession, types

from mcp_server.completions import matching
from storage import Database
from storage.bots import BotConfig, BotRegistry
from tests.mcp.conftest import SessionHost, http_opener, make_token

PROMPT = types.PromptReference(type="ref/prompt", name="reschedule_reminder")
BOT_PROMPT = types.PromptReference(type="ref/prompt", name="bot_report")
BOT_TEMPLATE = types.ResourceTemplateReference(type="ref/resource", uri="kommandant://bots/{name}")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def sessions(http_server: str, database: Database) -> AsyncIterator[dict[str, ClientSession]]:
    """Two people with their own tokens: ann (operator) and bob (viewer)."""
    hosts = {
        user: SessionHost(
            http_opener(
                http_server, await make_token(database, f"c-{user}-{uuid.uuid4().hex[:6]}", role, user)
            ),
            None,
        )
        for user, role in (("ann", "operator"), ("bob", "viewer"))
    }
    try:
        yield {user: await host.value() for user, host in hosts.items()}
    finally:
        for host in hosts.values():
            await host.close()


async def values(
    session: ClientSession,
    ref: types.PromptReference | types.ResourceTemplateReference,
    name: str,
    typed: str,
) -> list[str]:
    result = await session.complete(ref, {"name": name, "value": typed})
    return result.completion.values


def test_matching_puts_prefixes_first_and_ignores_case() -> None:
    names = ["Backup nightly", "crawler", "db-backup", "BACKGROUND"]
    assert matching(names, "back") == ["Backup nightly", "BACKGROUND", "db-backup"]
    assert matching(names, " CRA ") == ["crawler"]
    assert matching(names, "") == names
    assert matching(names, "zzz") == []


async def test_every_prompt_and_argument_is_described(sessions: dict[str, ClientSession]) -> None:
    prompts = (await sessions["ann"].list_prompts()).prompts
    assert {"remember", "bot_report", "reschedule_reminder", "summarise_document"} <= {
        p.name for p in prompts
    }
    for prompt in prompts:
        assert prompt.description, prompt.name
        for argument in prompt.arguments or []:
            assert argument.description, f"{prompt.name}.{argument.name}"


async def test_a_reminder_completes_for_its_owner_only(sessions: dict[str, ClientSession]) -> None:
    marker = uuid.uuid4().hex[:6]
    text = f"water the ferns {marker}"
    due = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    created = await sessions["ann"].call_tool("reminders_create", {"text": text, "due": due})
    assert not created.isError, created.content

    assert text in await values(sessions["ann"], PROMPT, "reminder", "water")
    assert text in await values(sessions["ann"], PROMPT, "reminder", marker)  # words inside the text too
    assert await values(sessions["bob"], PROMPT, "reminder", "water the ferns") == []
    assert text not in await values(sessions["bob"], PROMPT, "reminder", "")
    assert await values(sessions["ann"], PROMPT, "when", "tom") == []  # a free argument: no live names


async def test_bot_names_complete_in_prompts_and_the_bot_template(
    sessions: dict[str, ClientSession], database: Database
) -> None:
    marker = uuid.uuid4().hex[:6]
    bots = BotRegistry(database.sessionmaker)
    for name in (f"nightly-{marker}", f"nightcrawler-{marker}", f"mailer-{marker}"):
        await bots.add(BotConfig(name=name, command=("true",)))

    offered = await values(sessions["bob"], BOT_PROMPT, "bot", "night")
    assert {f"nightly-{marker}", f"nightcrawler-{marker}"} <= set(offered)
    assert f"mailer-{marker}" not in offered
    assert f"mailer-{marker}" in await values(sessions["ann"], BOT_TEMPLATE, "name", f"mailer-{marker}")
    assert await values(sessions["bob"], BOT_PROMPT, "bot", f"nosuchbot-{marker}") == []
    templates = (await sessions["bob"].list_resource_templates()).resourceTemplates
    assert "kommandant://bots/{name}" in {t.uriTemplate for t in templates}


async def test_unknown_prompts_complete_to_nothing(sessions: dict[str, ClientSession]) -> None:
    unknown = types.PromptReference(type="ref/prompt", name="test_prompt_with_arguments")
    result = await sessions["ann"].complete(unknown, {"name": "arg1", "value": "par"})
    assert result.completion.values == [] and result.completion.hasMore is False
