"""Approvals named by their place in the list ("approve the last one", "reject the first one"), through
Kommandant.handle on both buses: places count pending approvals oldest first, as the list shows them, and
"the last one" is the newest."""

from __future__ import annotations

import pytest

from assistant.events import ToolFinished
from assistant.runtime import Runtime
from tests.core.test_approvals_live import approvals, ask_then_leave, reply, rows, say
from tools.builtin.approvals import approval_position

ROOT = {"user": "root", "role": "admin", "channel": "cli", "thread": None}


@pytest.mark.parametrize(
    ("reference", "index"),
    [
        ("first", 0),
        ("Second", 1),
        ("tenth", 9),
        ("oldest", 0),
        ("last", -1),
        (" latest ", -1),
        ("3f2a9c", None),
    ],
)
def test_a_place_names_an_index_oldest_first(reference: str, index: int | None) -> None:
    assert approval_position(reference) == index


async def test_approve_the_last_one_approves_the_newer(runtime: Runtime) -> None:
    assert runtime.kommandant is not None and runtime.services is not None
    await say(runtime, "remember that my editor is neovim")
    await say(runtime, "remember that my shell is fish")
    older = await ask_then_leave(runtime, "forget my editor")
    newer = await ask_then_leave(runtime, "forget my shell")

    listed = await say(runtime, "show pending approvals", **ROOT)
    [shown] = [e.structured for e in listed if isinstance(e, ToolFinished)]
    assert shown is not None
    assert [a["id"] for a in shown["approvals"]] == [older.approval_id, newer.approval_id]

    done = await say(runtime, "approve the last one", **ROOT)
    [finished] = [e for e in done if isinstance(e, ToolFinished)]
    assert finished.tool == "approvals_decide" and finished.ok, finished.text
    assert finished.structured is not None and finished.structured["approval"]["id"] == newer.approval_id
    assert "Approved memory_forget" in reply(done)
    assert (await approvals(runtime).get(newer.approval_id)).status == "approved"
    assert (await approvals(runtime).get(older.approval_id)).status == "pending"
    [decided] = await rows(runtime, "approval_decided")
    assert decided.data["approval"] == newer.approval_id and decided.actor == "root"

    # The newer request ran (the shell is forgotten), the older did not (the editor is still known).
    assert "it ran now, detached" in reply(done), reply(done)
    assert "fish" not in reply(await say(runtime, "what is my shell")).lower()
    assert "neovim" in reply(await say(runtime, "what is my editor")).lower()

    # With one left, it is the first (and the last) one.
    rejected = await say(runtime, "reject the first one", **ROOT)
    assert "Rejected memory_forget" in reply(rejected), reply(rejected)
    assert (await approvals(runtime).get(older.approval_id)).status == "rejected"
    assert "Nothing is waiting for approval" in reply(await say(runtime, "approve the last one", **ROOT))


async def test_a_place_past_the_end_decides_nothing(runtime: Runtime) -> None:
    assert runtime.kommandant is not None
    await say(runtime, "remember that my pager is less")
    await say(runtime, "remember that my font is iosevka")
    first = await ask_then_leave(runtime, "forget my pager")
    second = await ask_then_leave(runtime, "forget my font")
    answer = reply(await say(runtime, "approve the third one", **ROOT))
    assert "Only 2 approvals are pending; there is no third one." in answer, answer
    for approval in (first, second):
        assert (await approvals(runtime).get(approval.approval_id)).status == "pending"
    assert await rows(runtime, "approval_decided") == []


async def test_it_after_a_place_means_the_approval_decided_then(runtime: Runtime) -> None:
    """After "approve the last one", "it" is that approval, not whichever is last when "it" is said."""
    assert runtime.kommandant is not None
    await say(runtime, "remember that my terminal is kitty")
    await say(runtime, "remember that my browser is firefox")
    first = await ask_then_leave(runtime, "forget my terminal")
    await say(runtime, "approve the last one", **ROOT)
    second = await ask_then_leave(runtime, "forget my browser")  # now the last one
    await say(runtime, "reject it", **ROOT)
    assert (await approvals(runtime).get(first.approval_id)).status == "approved"
    assert (await approvals(runtime).get(second.approval_id)).status == "pending"
    assert [row.data["approval"] for row in await rows(runtime, "approval_decided")] == [first.approval_id]
