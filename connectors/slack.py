"""The Slack front door: direct messages and mentions become turns, replies go to the same thread.

Events arrive over HTTP at ``/slack/events`` (bolt's ``AsyncSlackRequestHandler``: it reads the raw body
and checks the signature and its 5-minute window before anything else) or over Socket Mode when
``KOMMANDANT_SLACK_APP_TOKEN`` is set. Bolt acknowledges an event before the listener runs, so Slack
gets its answer within its 3 s; the turn runs afterwards. Slack resends an event it thinks was lost and
bolt does not de-duplicate, so each ``event_id`` is recorded in Postgres and a resend runs nothing.

A Slack user acts as the Kommandant account ``kommandant slack map`` gave them (with that account's
role), or as ``slack:<user id>`` with ``KOMMANDANT_SLACK_DEFAULT_ROLE``. Approvals are Block Kit
buttons; a click is decided by the tool that decides approvals, run as the clicking person (the same
tool, policy and audit as the web chat and MCP), so a person who may not approve is refused, and a
second click finds the approval decided already. Reminders, detached approval results and schedule
results of Slack turns come back as messages in their thread; each is sent once across replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast, get_args

from agents import approval_result_topic, fired_topic
from agents.slack import slack_client
from assistant.events import ReplyDelta, Role, ToolFinished, Turn
from connectors.base import ConnectorError, Health, HealthState
from connectors.slack_render import APPROVE_ACTION, REJECT_ACTION, SlackReply, decided_blocks, mrkdwn
from settings import Settings
from storage.connectors import Deliveries, SlackUsers, finished_runs

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient
    from starlette.requests import Request
    from starlette.responses import Response

    from assistant.kommandant import Kommandant

log = logging.getLogger(__name__)

CHANNEL = "slack"
"""The ``Turn.channel`` of Slack turns; their ``thread`` is ``<channel id>:<thread ts>``."""
EVENTS_PATH = "/slack/events"
SCHEDULE_POLL_SECONDS = 2.0
"""How often finished runs of Slack schedules are looked for (the scheduler publishes no event)."""
_MENTION = re.compile(r"<@[A-Z0-9]+(\|[^>]*)?>")
_ROLES: frozenset[str] = frozenset(get_args(Role))


def slack_thread(channel: str, thread_ts: str) -> str:
    """The ``Turn.thread`` of a Slack thread."""
    return f"{channel}:{thread_ts}"


def parse_thread(thread: str | None) -> tuple[str, str | None] | None:
    """(channel id, thread ts) of a Slack ``Turn.thread``; None when it names no Slack channel."""
    if not thread:
        return None
    channel, _, ts = thread.partition(":")
    return (channel, ts or None) if channel else None


def turn_text(text: str) -> str:
    """The words of a message without the mentions of the bot (``<@U123> remind me …``)."""
    return " ".join(_MENTION.sub(" ", text).split())


class SlackConnector:
    """Slack as a front door. ``start`` checks the token (``auth.test``) and starts delivering reminders
    and results; ``handle_http`` serves ``/slack/events``; ``health`` asks ``auth.test`` again."""

    name = "slack"

    def __init__(
        self,
        settings: Settings,
        kommandant: Kommandant,
        *,
        client: AsyncWebClient | None = None,
        schedule_poll_seconds: float = SCHEDULE_POLL_SECONDS,
    ) -> None:
        from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler

        client = client or slack_client(settings)
        if client is None:
            raise ConnectorError("Slack is not configured: set KOMMANDANT_SLACK_BOT_TOKEN.")
        self.settings = settings
        self.kommandant = kommandant
        self.client = client
        self.schedule_poll_seconds = schedule_poll_seconds
        sessionmaker = kommandant.services.database.sessionmaker
        self.users = SlackUsers(sessionmaker)
        self.deliveries = Deliveries(sessionmaker)
        secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
        self.http_enabled = bool(secret)
        self.app = self._bolt_app(secret)
        self.handler = AsyncSlackRequestHandler(self.app)
        self._socket: Any = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._background: list[asyncio.Task[None]] = []
        self._results_since = datetime.now(UTC)
        """Schedule runs that finished after this are delivered (kept over restarts, to catch up)."""

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        """Check the token, start delivering reminders and results, and connect Socket Mode if set."""
        health = await self.health()
        if health.state is not HealthState.UP:
            raise ConnectorError(health.detail)
        ready = [asyncio.Event(), asyncio.Event()]
        self._background += [
            asyncio.create_task(
                self._deliver(fired_topic(CHANNEL), "reminder", ready[0]), name="slack-reminders"
            ),
            asyncio.create_task(
                self._deliver(approval_result_topic(CHANNEL), "approval-result", ready[1]),
                name="slack-approval-results",
            ),
            asyncio.create_task(self._deliver_schedule_results(), name="slack-schedule-results"),
        ]
        async with asyncio.timeout(10):  # reminders due right after start are not missed
            for event in ready:
                await event.wait()
        app_token = self.settings.slack_app_token.get_secret_value() if self.settings.slack_app_token else ""
        if app_token:
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            self._socket = AsyncSocketModeHandler(self.app, app_token)  # built inside the running loop
            try:
                await self._socket.connect_async()
            except Exception as err:
                raise ConnectorError(f"Socket Mode could not connect: {type(err).__name__}") from err

    async def stop(self) -> None:
        """Disconnect Socket Mode, stop deliveries and cancel turns under way."""
        if self._socket is not None:
            with contextlib.suppress(Exception):
                await self._socket.close_async()
            self._socket = None
        for task in [*self._background, *self._tasks]:
            task.cancel()
        for task in [*self._background, *self._tasks]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._background.clear()
        self._tasks.clear()

    async def health(self) -> Health:
        """Up when ``auth.test`` answers for the token (and Socket Mode, if used, is connected)."""
        from slack_sdk.errors import SlackApiError

        try:
            answer = await self.client.auth_test()
        except SlackApiError as err:
            return Health(HealthState.DOWN, f"Slack refused the token: {err.response.get('error', '?')}")
        except Exception as err:  # unreachable, timed out, a proxy answering garbage
            return Health(HealthState.DOWN, f"Slack API unreachable ({type(err).__name__})")
        if self._socket is not None and not await self._socket.client.is_connected():
            return Health(HealthState.DOWN, "Socket Mode is disconnected")
        return Health(HealthState.UP, f"signed in as {answer.get('user')} to {answer.get('team')}")

    # -- HTTP -----------------------------------------------------------------------------------------------
    async def handle_http(self, request: Request) -> Response:
        """``POST /slack/events``: bolt checks the signature over the raw body (401 when wrong or more
        than 5 minutes old) before any listener sees it."""
        from starlette.responses import PlainTextResponse

        if not self.http_enabled:
            return PlainTextResponse("Slack events over HTTP are off (no signing secret).", status_code=404)
        return await self.handler.handle(request)

    # -- events in ---------------------------------------------------------------------------------
    def _bolt_app(self, signing_secret: str) -> AsyncApp:
        from slack_bolt.async_app import AsyncApp

        app = AsyncApp(
            client=self.client,
            signing_secret=signing_secret or None,
            request_verification_enabled=bool(signing_secret),
            logger=logging.getLogger("slack_bolt"),
        )

        @app.event("app_mention")
        async def on_mention(body: dict[str, Any], event: dict[str, Any]) -> None:
            await self._accept(body, event)

        @app.event("message")
        async def on_message(body: dict[str, Any], event: dict[str, Any]) -> None:
            # Only direct messages: a mention in a channel arrives as app_mention too.
            if event.get("channel_type") == "im" and not event.get("subtype") and not event.get("bot_id"):
                await self._accept(body, event)

        @app.action(re.compile(f"^({APPROVE_ACTION}|{REJECT_ACTION})$"))
        async def on_decide(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
            await ack()  # within Slack's 3 s; the decision follows
            self._spawn(self._decide(body, action))

        return app

    async def _accept(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        """Run the event's turn once, however often Slack delivers it."""
        event_id = str(body.get("event_id") or f"{event.get('channel')}:{event.get('ts')}")
        if not await self.deliveries.first("slack-event", event_id):
            log.info("Slack event %s delivered again; it ran already", event_id)
            return
        self._spawn(self._run_turn(event))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def identity(self, slack_user: str) -> tuple[str, Role]:
        """The account and role a Slack user acts as: their mapping, else ``slack:<id>`` with the
        default role. A role that is not one of ours counts as viewer."""
        mapped = await self.users.identity(slack_user)
        account, role = mapped or (f"slack:{slack_user}", self.settings.slack_default_role)
        return account, cast(Role, role if role in _ROLES else "viewer")

    async def _run_turn(self, event: dict[str, Any]) -> None:
        channel, ts = str(event.get("channel", "")), str(event.get("ts", ""))
        thread_ts = str(event.get("thread_ts") or ts)
        try:
            account, role = await self.identity(str(event.get("user", "")))
            turn = Turn(
                text=turn_text(str(event.get("text", ""))),
                user=account,
                channel=CHANNEL,
                thread=slack_thread(channel, thread_ts),
                role=role,
            )
            reply = SlackReply(self.client, channel, thread_ts, self.settings.slack_update_seconds)
            await reply.render(self.kommandant.handle(turn))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("a Slack turn failed (channel %s)", channel)

    # -- approvals ---------------------------------------------------------------------------------
    async def _decide(self, body: dict[str, Any], action: dict[str, Any]) -> None:
        """Decide the approval as the clicking person, through the tool that decides approvals (the
        policy refuses anyone who may not approve); on success the message shows who decided."""
        slack_user = str((body.get("user") or {}).get("id", ""))
        channel = str((body.get("channel") or {}).get("id", ""))
        message = body.get("message") or {}
        approve = action.get("action_id") == APPROVE_ACTION
        try:
            account, role = await self.identity(slack_user)
            thread_ts = str(message.get("thread_ts") or message.get("ts") or "")
            turn = Turn(
                text=f"{'approve' if approve else 'reject'} {action.get('value', '')}",
                user=account,
                channel=CHANNEL,
                thread=slack_thread(channel, thread_ts),
                role=role,
            )
            tool = self.kommandant.services.catalog.approval_decider()
            arguments = {"id": str(action.get("value", "")), "approve": approve}
            ok, words = False, []
            async for event in self.kommandant.run_tool(tool, arguments, turn):
                if isinstance(event, ToolFinished):
                    ok = event.ok
                elif isinstance(event, ReplyDelta) and event.text.strip():
                    words.append(event.text.strip())
            said = " ".join(words)
            if not ok:
                await self.client.chat_postEphemeral(channel=channel, user=slack_user, text=mrkdwn(said))
                return
            verdict = "✅ Approved" if approve else "❌ Rejected"
            who = f"*{mrkdwn(account)}* (<@{slack_user}>)"
            await self.client.chat_update(
                channel=channel,
                ts=str(message.get("ts", "")),
                text=f"{verdict} by {account}",
                blocks=decided_blocks(list(message.get("blocks") or []), verdict, who),
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("deciding an approval from Slack failed")

    # -- messages out ------------------------------------------------------------------------------
    async def _deliver(self, topic: str, kind: str, ready: asyncio.Event) -> None:
        """Post each reminder or detached approval result of a Slack turn in its thread, once."""
        async with self.kommandant.services.bus.subscribe(topic) as events:
            ready.set()
            async for event in events:
                payload = event.payload
                where = parse_thread(payload.get("thread"))
                key = str(payload.get("id") or payload.get("approval") or "")
                if where is None or not key:
                    continue
                if kind == "reminder":
                    text = f"⏰ Reminder: {mrkdwn(str(payload.get('text', '')))}"
                else:
                    outcome = "" if payload.get("ok") else " (it failed)"
                    result = mrkdwn(str(payload.get("text", "")))
                    text = f"Approved *{payload.get('tool')}* ran{outcome}: {result}"
                await self._post_once(f"slack-{kind}", key, where, text)

    async def _deliver_schedule_results(self) -> None:
        """Post how each run of a schedule made in Slack ended, in the schedule's thread, once."""
        sessionmaker = self.kommandant.services.database.sessionmaker
        while True:
            await asyncio.sleep(self.schedule_poll_seconds)
            try:
                for run in await finished_runs(sessionmaker, CHANNEL, self._results_since):
                    self._results_since = max(self._results_since, run.finished_at)
                    where = parse_thread(run.thread_id)
                    if where is None:
                        continue
                    result = run.reply or run.error or ""
                    text = f"🗓 Schedule *{mrkdwn(run.schedule)}* ran ({run.status}): {mrkdwn(result)}"
                    await self._post_once("slack-schedule-run", str(run.id), where, text)
            except Exception:  # the database or Slack blipped; the next poll tries again
                log.warning("delivering schedule results to Slack failed", exc_info=True)

    async def _post_once(self, source: str, key: str, where: tuple[str, str | None], text: str) -> None:
        if not await self.deliveries.first(source, key):
            return  # another replica (or an earlier delivery) sent it
        channel, thread_ts = where
        try:
            await self.client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text)
        except Exception:
            log.warning("could not post a %s to Slack channel %s", source, channel, exc_info=True)
