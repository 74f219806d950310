"""A turn's events as Slack messages: the reply in the thread (posted at its first words, updated while
it streams), the tool steps summarised under it, approvals as Block Kit buttons."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC
from typing import TYPE_CHECKING, Any

from assistant.events import (
    ApprovalRequired,
    ApprovalResolved,
    Event,
    ReplyDelta,
    ReplyDone,
    ToolFinished,
)

if TYPE_CHECKING:
    from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

APPROVE_ACTION = "kommandant_approve"
REJECT_ACTION = "kommandant_reject"
MAX_MESSAGE_CHARS = 3900
"""Longest text in one Slack message we send: Slack advises 4,000 and truncates far longer ones."""
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")


def mrkdwn(text: str) -> str:
    """Markdown as Slack shows it: ``&``, ``<`` and ``>`` escaped, ``**bold**`` as ``*bold*``,
    ``[label](url)`` as ``<url|label>``."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _LINK.sub(r"<\2|\1>", _BOLD.sub(r"*\1*", escaped))


def split_text(text: str, limit: int = MAX_MESSAGE_CHARS) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters, cut at a line break or a space when one is
    near the end, so a long answer becomes several messages instead of a truncated one."""
    pieces: list[str] = []
    while len(text) > limit:
        cut = max(text.rfind("\n", 0, limit), text.rfind(" ", 0, limit))
        if cut < limit // 2:
            cut = limit
        pieces.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    return [*pieces, text] if text or not pieces else pieces


def approval_blocks(event: ApprovalRequired) -> list[dict[str, Any]]:
    """The approval request with Approve / Reject buttons; the button's value is the approval id (the
    click is checked on the server: only people who may approve can decide)."""
    arguments = json.dumps(event.arguments, ensure_ascii=False, indent=2)
    text = (
        f"*{event.tool}* needs approval (`{event.approval_id[:8]}`), "
        f"asked by *{mrkdwn(event.requested_by)}*; "
        f"expires {event.expires_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC.\n```{arguments[:2500]}```"
    )
    buttons = [
        {
            "type": "button",
            "action_id": action,
            "text": {"type": "plain_text", "text": label},
            "style": style,
            "value": event.approval_id,
        }
        for action, label, style in (
            (APPROVE_ACTION, "Approve", "primary"),
            (REJECT_ACTION, "Reject", "danger"),
        )
    ]
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {"type": "actions", "block_id": "kommandant_approval", "elements": buttons},
    ]


def decided_blocks(original: list[dict[str, Any]], verdict: str, who: str) -> list[dict[str, Any]]:
    """The approval message after the decision: the request as it was, the buttons replaced by who
    decided."""
    kept = [b for b in original if b.get("type") != "actions"]
    return [*kept, {"type": "context", "elements": [{"type": "mrkdwn", "text": f"{verdict} by {who}"}]}]


def step_line(event: ToolFinished) -> str:
    """One tool step as the reply's footnote shows it."""
    mark = "✓" if event.ok else "✗"
    return f"{mark} `{event.tool}` ({event.agent}, {event.duration_ms:.0f} ms)"


@dataclass
class SlackReply:
    """One turn's reply in one Slack thread. ``render(events)`` shows the events and returns the reply.

    The reply message is posted at the first words and updated (``chat.update``) as more arrive, at
    most every ``update_seconds``; the final update adds the tool steps. Text beyond one message's
    length follows as further messages in the thread.
    """

    client: AsyncWebClient
    channel: str
    thread_ts: str
    update_seconds: float = 1.0
    ts: str | None = None
    text: str = ""
    steps: list[str] = field(default_factory=list)
    approvals: dict[str, str] = field(default_factory=dict)
    """Approval id -> ts of the message showing its buttons."""
    _updated: float = 0.0

    async def render(self, events: AsyncIterator[Event]) -> str:
        """Show every event of the turn; returns the whole reply text."""
        done = ""
        async for event in events:
            if isinstance(event, ToolFinished):
                self.steps.append(step_line(event))
            elif isinstance(event, ApprovalRequired):
                await self._ask_approval(event)
            elif isinstance(event, ApprovalResolved):
                self.text += f"\n_Approval of {event.tool}: {event.status}._\n"
            elif isinstance(event, ReplyDelta) and event.text.strip():
                self.text = f"{self.text} {event.text.strip()}".strip()
                await self._show(final=False)
            elif isinstance(event, ReplyDone):
                done = event.text
                if event.text.strip():
                    self.text = event.text.strip()
                if event.suggestions:
                    self.text += "\n" + "\n".join(f"• `{s}`" for s in event.suggestions)
                await self._show(final=True)
        return done

    async def _show(self, *, final: bool) -> None:
        now = time.monotonic()
        if not final and self.ts is not None and now - self._updated < self.update_seconds:
            return  # streamed: the next update (or the final one) shows these words
        body = mrkdwn(self.text) or "…"
        if final and self.steps:
            body += "\n\n_Steps:_ " + " · ".join(self.steps)
        pieces = split_text(body)
        first = pieces[0] if final else pieces[0] + (" …" if len(pieces) > 1 else "")
        if self.ts is None:
            response = await self.client.chat_postMessage(
                channel=self.channel, thread_ts=self.thread_ts, text=first
            )
            self.ts = str(response["ts"])
        else:
            await self.client.chat_update(channel=self.channel, ts=self.ts, text=first)
        self._updated = now
        if final:
            for piece in pieces[1:]:
                await self.client.chat_postMessage(channel=self.channel, thread_ts=self.thread_ts, text=piece)

    async def _ask_approval(self, event: ApprovalRequired) -> None:
        response = await self.client.chat_postMessage(
            channel=self.channel,
            thread_ts=self.thread_ts,
            text=f"{event.tool} needs approval ({event.approval_id[:8]})",
            blocks=approval_blocks(event),
        )
        self.approvals[event.approval_id] = str(response["ts"])
