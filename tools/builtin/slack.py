"""Slack tools: post a message to a Slack channel as the Kommandant's bot."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from tools.builtin.base import ToolInput, ToolOutput
from tools.definition import Risk, ToolDefinition

AGENT = "slack"

SlackChannel = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=80, pattern=r"^#?[A-Za-z0-9_.\-]+$"),
]
"""A channel id (C0123ABC), a channel name (#general or general) or a user id for a direct message."""
MessageText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]


class SlackPostInput(ToolInput):
    """Post a message to a Slack channel."""

    channel: SlackChannel = Field(
        description="The channel: an id such as C0123ABC, or a name such as #general."
    )
    text: MessageText = Field(description="The message, in Slack's mrkdwn (at most 4,000 characters).")


class SlackPosted(ToolOutput):
    """The message that was posted."""

    channel: str = Field(description="The channel it went to, as Slack names it (an id).")
    ts: str = Field(description="The message's timestamp, Slack's id of the message.")

    def summary(self) -> str:
        return f"Posted to Slack channel {self.channel}."


POST = ToolDefinition(
    name="slack_post",
    description="Post a message to a Slack channel as the Kommandant's Slack bot.",
    agent=AGENT,
    input_model=SlackPostInput,
    output_model=SlackPosted,
    risk=Risk.WRITE,
)

TOOLS = (POST,)
