"""The MCP contract, over stdio and streamable HTTP with the SDK's own client: tools with the catalog's
schemas, each kind of tool, structured output, clear errors, approvals, resources, prompts, audit."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import jsonschema
from mcp import types

from assistant.runtime import Runtime
from storage.approvals import ApprovalRepository
from storage.audit import AuditLog
from tests.mcp.conftest import Client, wait_for
from tools import builtin_catalog, private_digest


def text_of(result: types.CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))


async def test_lists_every_catalog_tool_with_its_schemas(client: Client) -> None:
    listed = {tool.name: tool for tool in (await client.session.list_tools()).tools}
    catalog = builtin_catalog()
    assert set(catalog.names()) | {"ask"} <= set(listed)
    for defined in catalog:
        tool = listed[defined.name]
        assert tool.inputSchema == defined.input_schema()
        assert tool.outputSchema == defined.output_schema()
        assert tool.annotations is not None
        assert tool.annotations.readOnlyHint is (defined.risk == "read")
        assert tool.annotations.destructiveHint is (defined.risk == "dangerous")
    assert listed["ask"].inputSchema["required"] == ["text"]


async def test_read_tool_returns_structured_output_matching_its_schema(client: Client) -> None:
    result = await client.session.call_tool("system_status", {})
    assert not result.isError, text_of(result)
    assert result.structuredContent is not None
    schema = builtin_catalog().get("system_status").output_schema()
    jsonschema.validate(result.structuredContent, schema)
    names = {agent["name"] for agent in result.structuredContent["agents"]}
    assert {"memory", "system", "reminders"} <= names
    assert text_of(result).endswith(".")


async def test_write_tool_then_ask_recalls_it(client: Client) -> None:
    word = f"editor{uuid.uuid4().hex[:6]}"
    result = await client.session.call_tool("memory_remember", {"fact": f"my {word} is helix"})
    assert not result.isError, text_of(result)
    assert result.structuredContent is not None
    assert result.structuredContent["fact"]["fact"] == f"my {word} is helix"
    asked = await client.session.call_tool("ask", {"text": f"what is my {word}"})
    assert not asked.isError
    assert asked.structuredContent is not None
    assert "helix" in asked.structuredContent["reply"].lower()
    assert [i["tool"] for i in asked.structuredContent["intents"]] == ["memory_recall"]
    assert asked.structuredContent["tools"][0]["ok"] is True
    assert "helix" in text_of(asked).lower()


async def test_ask_with_two_commands_runs_both_in_order(client: Client) -> None:
    asked = await client.session.call_tool(
        "ask", {"text": "remind me to stretch in an hour and show my reminders"}
    )
    assert asked.structuredContent is not None
    tools = [t["tool"] for t in asked.structuredContent["tools"]]
    assert tools == ["reminders_create", "reminders_list"]
    assert all(t["ok"] for t in asked.structuredContent["tools"])


async def test_invalid_arguments_are_an_error_result_with_a_clear_message(client: Client) -> None:
    missing = await client.session.call_tool("memory_remember", {})
    assert missing.isError
    assert "Invalid arguments for memory_remember" in text_of(missing)
    assert "fact" in text_of(missing)
    wrong = await client.session.call_tool("audit_recent", {"limit": 100000})
    assert wrong.isError and "limit" in text_of(wrong)
    extra = await client.session.call_tool("system_status", {"bogus": 1})
    assert extra.isError and "bogus" in text_of(extra)
    empty = await client.session.call_tool("ask", {"text": ""})
    assert empty.isError and "ask" in text_of(empty)


async def test_unknown_tool_is_an_error_result(client: Client) -> None:
    result = await client.session.call_tool("no_such_tool", {})
    assert result.isError
    assert "no tool called 'no_such_tool'" in text_of(result)


async def test_dangerous_call_approved_through_elicitation(client: Client) -> None:
    word = f"pet{uuid.uuid4().hex[:6]}"
    await client.session.call_tool("memory_remember", {"fact": f"my {word} is a cat"})
    client.elicitor.answers = ["accept"]
    result = await client.session.call_tool("memory_forget", {"query": f"my {word}"})
    assert not result.isError, text_of(result)
    assert client.elicitor.asked and "memory_forget" in client.elicitor.asked[-1]
    assert result.structuredContent is not None
    assert [f["fact"] for f in result.structuredContent["forgotten"]] == [f"my {word} is a cat"]


async def test_dangerous_call_rejected_through_elicitation(client: Client) -> None:
    word = f"car{uuid.uuid4().hex[:6]}"
    await client.session.call_tool("memory_remember", {"fact": f"my {word} is red"})
    client.elicitor.answers = ["decline"]
    result = await client.session.call_tool("memory_forget", {"query": f"my {word}"})
    assert result.isError
    assert "Not running memory_forget: the approval was rejected" in text_of(result)
    still = await client.session.call_tool("memory_recall", {"query": f"my {word}"})
    assert "red" in text_of(still)


async def test_dangerous_call_waits_for_a_person_elsewhere(client: Client, person: Runtime) -> None:
    """A client without elicitation waits; a person approves (here: another Kommandant process)."""
    word = f"boat{uuid.uuid4().hex[:6]}"
    await client.plain.call_tool("memory_remember", {"fact": f"my {word} is blue"})
    call = asyncio.create_task(client.plain.call_tool("memory_forget", {"query": f"my {word}"}))
    assert person.services is not None and person.kommandant is not None
    approvals = ApprovalRepository(person.services.database.sessionmaker)

    async def pending() -> Any:
        found = [a for a in await approvals.pending() if a.arguments == {"query": f"my {word}"}]
        return found[0] if found else None

    approval = await wait_for(pending)
    assert approval.requested_by == client.user and approval.channel == "mcp"
    assert not call.done()
    decided = await person.kommandant.decide(
        str(approval.id), approve=True, user="boss", role="admin", channel="web"
    )
    assert "Approved" in decided.text
    result = await asyncio.wait_for(call, 15)
    assert not result.isError, text_of(result)
    assert result.structuredContent is not None and len(result.structuredContent["forgotten"]) == 1


async def test_dangerous_call_rejected_elsewhere_is_a_clear_error(client: Client, person: Runtime) -> None:
    word = f"bike{uuid.uuid4().hex[:6]}"
    call = asyncio.create_task(client.plain.call_tool("memory_forget", {"query": f"my {word}"}))
    assert person.services is not None and person.kommandant is not None
    approvals = ApprovalRepository(person.services.database.sessionmaker)

    async def pending() -> Any:
        found = [a for a in await approvals.pending() if a.arguments == {"query": f"my {word}"}]
        return found[0] if found else None

    approval = await wait_for(pending)
    await person.kommandant.decide(str(approval.id), approve=False, user="boss", role="admin", channel="web")
    result = await asyncio.wait_for(call, 15)
    assert result.isError
    assert "the approval was rejected" in text_of(result)


async def test_calls_are_audited_on_the_mcp_channel(client: Client, person: Runtime) -> None:
    marker = f"audit{uuid.uuid4().hex[:6]}"
    await client.session.call_tool("memory_remember", {"fact": f"my {marker} is on"})
    assert person.services is not None
    rows = await AuditLog(person.services.database.sessionmaker).tail(50)
    assert person.kommandant is not None  # the server shares its data folder, so its audit key
    # the fact is private: the trail keeps its keyed hash
    hashed = private_digest(f"my {marker} is on", person.kommandant.audit_key)
    calls = [r for r in rows if r.kind == "tool_call" and r.data["arguments"].get("fact") == hashed]
    assert not [r for r in rows if marker in json.dumps(r.data)]
    assert len(calls) == 1
    assert calls[0].channel == "mcp" and calls[0].actor == client.user
    call_id = calls[0].data["call"]
    assert any(r.kind == "tool_result" and r.data.get("call") == call_id and r.data["ok"] for r in rows)


async def test_resources_list_and_read(client: Client) -> None:
    listed = {str(r.uri) for r in (await client.session.list_resources()).resources}
    assert {
        "kommandant://memory",
        "kommandant://knowledge",
        "kommandant://audit",
        "kommandant://agents",
    } <= listed
    word = f"shell{uuid.uuid4().hex[:6]}"
    await client.session.call_tool("memory_remember", {"fact": f"my {word} is fish"})

    async def read(uri: str) -> dict[str, Any]:
        result = await client.session.read_resource(uri)  # type: ignore[arg-type]
        content = result.contents[0]
        assert isinstance(content, types.TextResourceContents) and content.mimeType == "application/json"
        data: dict[str, Any] = json.loads(content.text)
        return data

    memory = await read("kommandant://memory")
    assert memory["user"] == client.user
    assert f"my {word} is fish" in [f["fact"] for f in memory["facts"]]
    agents = await read("kommandant://agents")
    assert "memory" in {a["name"] for a in agents["agents"]}
    audit = await read("kommandant://audit")
    assert audit["rows"] and {"seq", "actor", "kind", "summary"} <= set(audit["rows"][0])
    knowledge = await read("kommandant://knowledge")
    assert isinstance(knowledge["entries"], list)


async def test_prompts_list_and_get(client: Client) -> None:
    names = {p.name for p in (await client.session.list_prompts()).prompts}
    assert {"remember", "recall", "status_report", "plan_reminders", "search_knowledge"} <= names
    prompt = await client.session.get_prompt("remember", {"fact": "the wifi password is on the fridge"})
    message = prompt.messages[0].content
    assert isinstance(message, types.TextContent)
    assert "memory_remember" in message.text and "fridge" in message.text
