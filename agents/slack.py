"""The Slack agent: serves the Slack posting tool with slack_sdk's ``AsyncWebClient`` (waits out rate limits).

The Slack front door (``connectors/slack.py``) shares ``slack_client`` so both talk to the same API with
the same retry rules; this agent never imports the connector.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from agents.base import Agent, CallContext
from agents.errors import AgentError
from agents.services import Services
from settings import Settings
from tools.builtin import slack
from tools.builtin.slack import SlackPosted, SlackPostInput

if TYPE_CHECKING:
    from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)
RATE_LIMIT_RETRIES = 3
"""Times a call answered 429 is retried after the Retry-After Slack names."""


def slack_client(settings: Settings) -> AsyncWebClient | None:
    """A Web API client with the bot token, or None when Slack is not configured. A 429 answer is retried
    after its ``Retry-After`` seconds; a dropped connection once."""
    from slack_sdk.http_retry.builtin_async_handlers import (
        AsyncConnectionErrorRetryHandler,
        AsyncRateLimitErrorRetryHandler,
    )
    from slack_sdk.web.async_client import AsyncWebClient

    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else ""
    if not token:
        return None
    return AsyncWebClient(
        token=token,
        base_url=settings.slack_api_url,
        timeout=15,
        retry_handlers=[
            AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
            AsyncConnectionErrorRetryHandler(max_retry_count=1),
        ],
    )


class SlackAgent(Agent):
    name = slack.AGENT
    description = "Posts messages to Slack channels."

    def __init__(self, services: Services) -> None:
        super().__init__(services)
        self._client = slack_client(services.settings)
        self.register(slack.POST, self.post)

    async def post(self, args: SlackPostInput, ctx: CallContext) -> SlackPosted:
        """Post ``args.text`` to ``args.channel`` as the bot."""
        from slack_sdk.errors import SlackApiError, SlackClientError

        if self._client is None:
            raise AgentError("Slack is not set up here: set KOMMANDANT_SLACK_BOT_TOKEN (see docs/slack.md).")
        try:
            response = await self._client.chat_postMessage(channel=args.channel, text=args.text)
        except SlackApiError as err:
            error = err.response.get("error", "unknown error")
            raise AgentError(f"Slack refused the message: {error}.") from err
        except (SlackClientError, OSError, TimeoutError) as err:
            log.warning("posting to Slack failed", exc_info=True)
            raise AgentError("Could not reach Slack; try again later.") from err
        channel = str(response.get("channel") or args.channel)
        return SlackPosted(channel=channel, ts=str(response.get("ts") or ""))
