"""The Kommandant: one turn from text to reply. It orchestrates; parsing, policy, dispatch and storage
are the other packages' work."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol, get_args
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agents import APPROVALS_DECIDED, Services, approval_result_topic
from assistant import policy
from assistant.events import (
    ApprovalRequired,
    ApprovalResolved,
    Event,
    Failed,
    IntentRecognized,
    ReplyDelta,
    ReplyDone,
    Role,
    ToolFinished,
    ToolStarted,
    Turn,
)
from bus import BusError, CallTimeout, NoWorker, Subscription, ToolCall
from intents import ConversationContext, IntentMatch, LiveLists, Recognizer
from storage import is_connection_lost
from storage.approvals import ApprovalRepository
from storage.audit import AuditDraft, AuditLog
from storage.audit_key import audit_key
from storage.errors import StorageError
from storage.lists import live_names
from storage.records import ApprovalRecord
from telemetry.logs import current_ids
from telemetry.metrics import observe_turn, tool_call_finished
from tools import EntityKind, Risk, ToolDefinition, private_digest
from tools.builtin.approvals import ApprovalDecision, approval_position
from tools.errors import ToolError

log = logging.getLogger(__name__)

MAX_TURN_CHARS = 10_000
"""Longest utterance accepted; longer input gets a clear reply instead of being parsed."""
MAX_CONTEXTS = 10_000
TURN_CRASHED = "Sorry — something went wrong on my side. Please try again."
"""The reply when a step raised: never meant to be seen (each failure has its own sentence)."""
CONNECTION_LOST = "I lost the connection to the database while doing that; please say it again."
CONFIRM_TTL = 120.0
"""Seconds a spoken command waiting for "yes" stays open."""
_YES = frozenset({"yes", "yeah", "yep", "yup", "correct", "right", "sure", "ok", "okay", "do it", "go ahead",
                  "yes please", "confirm", "that is right", "exactly"})  # fmt: skip
REQUESTER_ALIVE = 10.0
"""Seconds a waiting requester's liveness mark lasts; the waiting turn renews it every quarter of that."""
RAN_DETACHED = "approved after this request stopped waiting"
"""``ApprovalResolved.status`` when the call ran detached (its result went to the channel's topic)."""
_ROLES: frozenset[str] = frozenset(get_args(Role))
_NO = frozenset(
    {"no", "nope", "nah", "cancel", "wrong", "no thanks", "don't", "do not", "never mind", "stop"}
)


async def live_lists(sessionmaker: async_sessionmaker[AsyncSession], user: str) -> LiveLists:
    """The names a turn of ``user`` can say (bots, schedules, their pending reminders), for matching."""
    names = await live_names(sessionmaker, user)
    return LiveLists(bots=names.bots, schedules=names.schedules, reminders=names.reminders)


def _recognized(match: IntentMatch) -> IntentRecognized:
    return IntentRecognized(
        tool=match.tool,
        arguments=match.arguments,
        confidence=match.confidence,
        source=match.source,
        text=match.text,
    )


class PrivateCommandError(ToolError):
    """A schedule would keep a command whose arguments are private (a fact to remember, a search query)."""


class TurnAudit:
    """A turn's audit rows, buffered and written together: before anything acts (a dispatch, an approval
    request) and before the reply, so every step is durable before its effect or answer is seen."""

    def __init__(self, log: AuditLog, turn: Turn) -> None:
        self._log, self._turn = log, turn
        self._pending: list[AuditDraft] = []
        # The turn id the logs carry (set by ``observe_turn``), so log lines and audit rows can be joined.
        self._turn_id = current_ids().get("turn")

    def record(self, kind: str, *, tool: str | None = None, data: dict[str, Any]) -> None:
        turn = self._turn
        if self._turn_id is not None:
            data = {**data, "turn_id": self._turn_id}
        self._pending.append(
            AuditDraft(
                kind=kind, actor=turn.user, channel=turn.channel, thread_id=turn.thread, tool=tool, data=data
            )
        )

    def redact_turn_text(self, key: bytes) -> None:
        """Keep the turn's text as a keyed hash only (``key``: the audit key), because it carries private
        arguments (a fact to remember, a search query). Called once the text is understood, before the
        turn row is written."""
        for i, draft in enumerate(self._pending):
            if draft.kind == "turn":
                digest = private_digest(self._turn.text.strip(), key)
                data = {**(draft.data or {}), "text": digest, "private": True}
                self._pending[i] = draft.model_copy(update={"data": data})
                return
        log.error("a turn's text proved private after its audit row was written (user=%s)", self._turn.user)

    def redact_argument(self, key: bytes, name: str) -> None:
        """An argument proved private after it was understood (a schedule's sentence whose command is
        private): keep it as a keyed hash in every row not yet written, and the turn's text too."""
        self.redact_turn_text(key)
        for i, draft in enumerate(self._pending):
            arguments = (draft.data or {}).get("arguments")
            if isinstance(arguments, dict) and isinstance(arguments.get(name), str):
                kept = {**arguments, name: private_digest(arguments[name], key)}
                data = {**(draft.data or {}), "arguments": kept}
                self._pending[i] = draft.model_copy(update={"data": data})

    async def flush(self) -> None:
        pending, self._pending = self._pending, []
        await self._log.append_many(pending)


@dataclass
class StreamedAnswer:
    """A chat answer that arrives in pieces (the LLM streaming); the turn shows each piece at once."""

    deltas: AsyncIterator[str]


class FallbackUnavailableError(Exception):
    """The fallback (the LLM) could not answer: unreachable, too slow, or it failed; the message says so."""


class Fallback(Protocol):
    """What answers when no template matches (the LLM): intents to run, or a chat answer.

    Raises ``FallbackUnavailableError`` with a sentence for the person when it cannot answer.
    """

    async def resolve(
        self, turn: Turn, kommandant: Kommandant
    ) -> list[IntentMatch] | StreamedAnswer | str | None:
        """``kommandant``: its catalog to choose from, and ``run_tool`` for any reads the answer needs
        (so they pass policy and audit as the person asking)."""
        ...


class Kommandant:
    """``handle(turn)`` yields the events of one turn: intents, approvals, tool calls, the reply."""

    def __init__(
        self, services: Services, recognizer: Recognizer, *, fallback: Fallback | None = None
    ) -> None:
        self.services = services
        self.recognizer = recognizer
        self.fallback = fallback
        self.approvals = ApprovalRepository(services.database.sessionmaker)
        self.audit_key = audit_key(services.settings)
        """The key of the audit trail's hashes of private text (``tools.private_digest``)."""
        self._tz = ZoneInfo(services.settings.timezone)
        self._contexts: OrderedDict[tuple[str, str | None], ConversationContext] = OrderedDict()
        self._unconfirmed: dict[tuple[str, str | None], tuple[float, list[IntentMatch]]] = {}
        self._watchers: set[asyncio.Task[None]] = set()

    # -- the turn -----------------------------------------------------------------------------------------
    async def handle(self, turn: Turn) -> AsyncIterator[Event]:
        """Understand ``turn``, run what it asks (in order), and reply. Never raises for bad input.

        A turn that lost its database connection before showing anything (a database restart) is run
        once more on fresh connections; later, the person is told plainly to say it again.
        """
        with observe_turn(turn.channel, turn.user) as watch:  # metrics and the turn's log ids
            for attempt in (1, 2):
                shown = False
                try:
                    async for event in self._handle(turn):
                        shown = True
                        if isinstance(event, Failed):
                            watch.failed()
                        yield event
                    return
                except Exception as err:
                    lost = is_connection_lost(err)
                    if lost and not shown and attempt == 1:
                        log.warning("database connection lost; running the turn again on fresh connections")
                        continue
                    log.exception("turn failed: user=%s channel=%s", turn.user, turn.channel)
                    message = CONNECTION_LOST if lost else TURN_CRASHED
                    watch.failed()
                    yield Failed(message)
                    yield ReplyDone(message)
                    return

    async def _handle(self, turn: Turn) -> AsyncIterator[Event]:
        audit = TurnAudit(self.services.audit, turn)
        try:
            async for event in self._steps(turn, audit):
                if isinstance(event, ReplyDone):
                    await audit.flush()
                yield event
        finally:
            await audit.flush()

    async def _steps(self, turn: Turn, audit: TurnAudit) -> AsyncIterator[Event]:
        text = turn.text.strip()
        audit.record("turn", data={"text": text[:2000], "chars": len(turn.text)})
        if not text:
            examples = self.safe_suggestions(turn, "")
            lead = "Say or type a command — for example: "
            yield ReplyDone(lead + "; ".join(examples), suggestions=examples)
            return
        if len(text) > MAX_TURN_CHARS:
            message = (
                f"That message is {len(text):,} characters long; I take at most {MAX_TURN_CHARS:,}. "
                "Send a shorter command, or upload long text as a document."
            )
            yield Failed(message)
            yield ReplyDone(message)
            return
        confirmed = self._confirmation(turn, text)
        if isinstance(confirmed, str):
            audit.record("confirm_declined", data={})
            yield ReplyDelta(confirmed)
            yield ReplyDone(confirmed)
            return
        matches = confirmed if confirmed is not None else await self.recognize(turn)
        self._keep_private(matches, audit)
        if not matches or (confirmed is None and self._second_opinion(turn, matches)):
            async for event in self._no_match(turn, audit, guesses=matches):
                yield event
            return
        async for event in self._run_matches(turn, matches, audit, confirmed=confirmed is not None):
            yield event

    def _second_opinion(self, turn: Turn, matches: list[IntentMatch]) -> bool:
        """Whether the language model judges first: a spoken turn understood only by correcting what was
        heard is a guess, and the model, when there is one, may name another tool or none."""
        return self._consults_fallback(turn) and all(m.source == "corrected" for m in matches)

    async def _run_matches(
        self, turn: Turn, matches: list[IntentMatch], audit: TurnAudit, *, confirmed: bool
    ) -> AsyncIterator[Event]:
        """Run the understood commands in order, or read an unsure spoken one back first."""
        if not confirmed and self._unsure(turn, matches):
            async for event in self._ask_to_confirm(turn, matches, audit):
                yield event
            return
        replies: list[str] = []
        for match in matches:
            async for event in self._run_match(match, turn, audit):
                if isinstance(event, ReplyDelta):
                    replies.append(event.text)
                yield event
        yield ReplyDone(" ".join(r.strip() for r in replies if r.strip()))

    # -- spoken commands heard with low confidence ----------------------------------------------------------
    def _unsure(self, turn: Turn, matches: list[IntentMatch]) -> bool:
        """A spoken turn heard with low confidence, or understood only after correcting what was heard,
        that would change something: read it back first."""
        if turn.speech_confidence is None:
            return False
        corrected = any(m.source == "corrected" for m in matches)
        if not corrected and turn.speech_confidence >= self.services.settings.speech_confirm_below:
            return False
        risks = {self.services.catalog.get(m.tool).risk for m in matches if m.tool in self.services.catalog}
        return bool(risks & {Risk.WRITE, Risk.DANGEROUS})

    async def _ask_to_confirm(
        self, turn: Turn, matches: list[IntentMatch], audit: TurnAudit
    ) -> AsyncIterator[Event]:
        now = time.monotonic()
        if len(self._unconfirmed) >= MAX_CONTEXTS:
            self._unconfirmed = {k: v for k, v in self._unconfirmed.items() if v[0] > now}
        self._unconfirmed[(turn.user, turn.thread)] = (now + CONFIRM_TTL, matches)
        for match in matches:
            yield _recognized(match)
        audit.record(
            "confirm_requested",
            data={"tools": [m.tool for m in matches], "speech_confidence": turn.speech_confidence},
        )
        said = [await self._read_back(m, turn) for m in matches]
        heard = " and ".join(text for text in said if text) or turn.text.strip()
        question = f"Did you mean: {heard.rstrip('.!?')}? Say yes to go ahead, or no."
        yield ReplyDelta(question)
        yield ReplyDone(question, suggestions=["yes", "no"])

    async def _read_back(self, match: IntentMatch, turn: Turn) -> str:
        """A command in words for "Did you mean …?": a decision on an approval names the request it
        decides ("the last one" may not be the one the person has in mind)."""
        tool = self.services.catalog.get(match.tool) if match.tool in self.services.catalog else None
        if tool is None or not tool.decides_approvals:
            return match.text
        reference = str(match.arguments.get("id", ""))
        try:
            place = approval_position(reference)
            if place is None:
                record: ApprovalRecord | None = await self.approvals.find(reference)
            else:
                pending = await self.approvals.pending()
                pending = [r for r in pending if turn.role == "admin" or r.requested_by == turn.user]
                record = pending[place] if -len(pending) <= place < len(pending) else None
        except StorageError:
            record = None
        verb = "approve" if match.arguments.get("approve") else "reject"
        if record is None:
            return f"{verb} approval {reference} (there is no such request now)"
        return f"{verb} the request of {record.requested_by} to run {record.tool} ({str(record.id)[:8]})"

    def _confirmation(self, turn: Turn, text: str) -> list[IntentMatch] | str | None:
        """After "Did you mean …?": the commands to run on yes, a reply on no, None for anything else."""
        pending = self._unconfirmed.pop((turn.user, turn.thread), None)
        if pending is None or pending[0] < time.monotonic():
            return None
        answer = " ".join(text.lower().strip(" .!?").replace(",", " ").split())
        if answer in _YES:
            return pending[1]
        if answer in _NO:
            return "OK, I won't do that."
        return None

    async def recognize(self, turn: Turn) -> list[IntentMatch]:
        """Template matches for the turn, with live names from storage and the conversation so far; for a
        spoken turn, also the nearest command to a misheard one (``source="corrected"``); a turn that brings
        its commands understood (a schedule firing) runs those."""
        if turn.intents is not None:
            return list(turn.intents)
        lists = await live_lists(self.services.database.sessionmaker, turn.user)
        # Speech may be misheard: a transcript that is no command is tried as the nearest one that is.
        recognize = (
            self.recognizer.recognize if turn.speech_confidence is None else self.recognizer.recognize_heard
        )
        return recognize(turn.text, lists=lists, context=self._context(turn), now=datetime.now(self._tz))

    async def _no_match(
        self, turn: Turn, audit: TurnAudit, *, guesses: list[IntentMatch] | None = None
    ) -> AsyncIterator[Event]:
        """No template understood the turn (or only ``guesses``, corrections of a misheard one): the
        fallback's tool calls or answer, a friendly word for chatter, the guesses when the fallback has
        nothing to say, else the closest commands."""
        deadline = time.monotonic() + self.services.settings.llm_timeout
        unavailable = None
        try:
            answer = await self._ask_fallback(turn, deadline)
        except FallbackUnavailableError as err:
            answer, unavailable = None, str(err)
        chat = self.recognizer.chat(turn.text)
        if chat is not None and isinstance(answer, list):
            answer = None  # greetings, thanks and small talk never become a tool call
        if isinstance(answer, list) and answer:
            self._keep_private(answer, audit)
        elif self._consults_fallback(turn):
            audit.redact_turn_text(self.audit_key)  # the fallback searched memory and knowledge with them
        if isinstance(answer, StreamedAnswer):
            async for event in self._stream_answer(answer, deadline, audit):
                yield event
            return
        if isinstance(answer, list) and answer:
            replies = []
            for match in answer:
                async for event in self._run_match(match, turn, audit):
                    if isinstance(event, ReplyDelta):
                        replies.append(event.text)
                    yield event
            yield ReplyDone(" ".join(r.strip() for r in replies if r.strip()))
            return
        if isinstance(answer, str) and answer:
            yield ReplyDelta(answer)
            yield ReplyDone(answer)
            return
        if chat is not None:  # a friendly word back, with or without an LLM
            audit.record("chat", data={"kind": chat.kind})
            yield ReplyDelta(chat.reply)
            yield ReplyDone(chat.reply)
            return
        if guesses:  # the model had nothing to say (or is unreachable): the corrected guess, as without it
            async for event in self._run_matches(turn, guesses, audit, confirmed=False):
                yield event
            return
        suggestions = self.safe_suggestions(turn, turn.text)
        reply = "I didn't understand that."
        if unavailable:
            reply = f"I didn't understand that, and {unavailable}"
        if suggestions:
            reply += " Try: " + "; ".join(f"“{s}”" for s in suggestions) + "."
        audit.record("no_match", data={"suggestions": suggestions})
        yield ReplyDelta(reply)
        yield ReplyDone(reply, suggestions=suggestions)

    async def _ask_fallback(
        self, turn: Turn, deadline: float
    ) -> list[IntentMatch] | StreamedAnswer | str | None:
        """The fallback's answer by ``deadline``; ``FallbackUnavailableError`` when it has none."""
        if self.fallback is None or not self._consults_fallback(turn):
            return None
        try:
            async with asyncio.timeout(max(0.001, deadline - time.monotonic())):
                return await self.fallback.resolve(turn, self)
        except FallbackUnavailableError:
            raise
        except TimeoutError as err:
            limit = self.services.settings.llm_timeout
            raise FallbackUnavailableError(f"the language model did not answer within {limit:g} s.") from err
        except Exception as err:
            log.warning("the LLM fallback failed", exc_info=True)
            raise FallbackUnavailableError("the language model failed; the log has the details.") from err

    def _consults_fallback(self, turn: Turn) -> bool:
        """Whether a turn no template understood goes to the fallback (the LLM)."""
        return self.fallback is not None and turn.llm_model != ""  # "": this person chose templates only

    async def _stream_answer(
        self, answer: StreamedAnswer, deadline: float, audit: TurnAudit
    ) -> AsyncIterator[Event]:
        """Show a streamed answer piece by piece; a stall past the deadline ends it with a clear note."""
        pieces: list[str] = []
        iterator = aiter(answer.deltas)
        while True:
            try:
                async with asyncio.timeout(max(0.001, deadline - time.monotonic())):
                    piece = await anext(iterator)
            except StopAsyncIteration:
                break
            except Exception as err:
                stalled = isinstance(err, TimeoutError)
                if not stalled:
                    log.warning("the LLM answer broke off", exc_info=True)
                note = " … (the language model stopped answering" + (" in time)" if stalled else ")")
                with contextlib.suppress(Exception):
                    await iterator.aclose()  # type: ignore[attr-defined]
                pieces.append(note)
                yield ReplyDelta(note)
                break
            pieces.append(piece)
            yield ReplyDelta(piece)
        text = "".join(pieces).strip()
        audit.record("llm_answer", data={"chars": len(text)})
        yield ReplyDone(text)

    # -- one intent ---------------------------------------------------------------------------------------
    async def _run_match(self, match: IntentMatch, turn: Turn, audit: TurnAudit) -> AsyncIterator[Event]:
        try:
            tool = self.services.catalog.get(match.tool)
        except ToolError as err:
            yield Failed(str(err))
            yield ReplyDelta(str(err))
            return
        if match.problem is not None:  # understood, but it cannot run as said (a fact over its limit)
            yield Failed(match.problem)
            yield ReplyDelta(match.problem)
            return
        yield _recognized(match)
        audit.record(
            "intent",
            tool=tool.name,
            data={
                "arguments": self._auditable(tool.name, match.arguments),
                "confidence": match.confidence,
                "source": match.source,
            },
        )
        decided: str | None = None
        async for event in self.run_tool(tool, match.arguments, turn, audit=audit):
            if tool.decides_approvals and isinstance(event, ToolFinished) and event.ok and event.structured:
                decided = ApprovalDecision.model_validate(event.structured).approval.id
            yield event
        if decided is not None and match.mention is not None:
            # "approve the last one": "it" later means the approval decided now, not whichever is last then
            match = replace(match, mention=replace(match.mention, name=decided))
        self._context(turn).observe(match)

    async def run_tool(
        self, tool: ToolDefinition, arguments: dict[str, Any], turn: Turn, *, audit: TurnAudit | None = None
    ) -> AsyncIterator[Event]:
        """Policy, approval if needed, dispatch over the bus; ends with a ``ReplyDelta`` sentence.

        Front doors that call tools directly (MCP, buttons) use this too, so the rules are the same.
        """
        if audit is None:
            own = TurnAudit(self.services.audit, turn)
            try:
                async for event in self.run_tool(tool, arguments, turn, audit=own):
                    yield event
            finally:
                await own.flush()
            return
        try:
            arguments = await self._with_command(tool, arguments, turn)
            tool.validate_arguments(arguments)
        except ToolError as err:
            if isinstance(err, PrivateCommandError):
                audit.redact_argument(self.audit_key, "target")  # the sentence said the private words
            yield Failed(str(err))
            yield ReplyDelta(str(err))
            return
        decision = policy.decide(tool, turn.role)
        if decision.verdict is policy.Verdict.REFUSE:
            audit.record("refused", tool=tool.name, data={"reason": decision.reason})
            yield Failed(decision.reason)
            yield ReplyDelta(decision.reason)
            return
        if decision.verdict is policy.Verdict.APPROVAL:
            status = None
            async for event in self._approval(tool, arguments, turn, audit):
                if isinstance(event, ApprovalResolved):
                    status = event.status
                yield event
            if status == RAN_DETACHED:
                yield ReplyDelta(f"{tool.name} was {status}: it ran detached and its result was sent here.")
                return
            if status != "approved":
                reply = f"Not running {tool.name}: the approval was {status or 'not given'}."
                yield ReplyDelta(reply)
                return
        decided: dict[str, Any] | None = None
        async for event in self._dispatch(tool, arguments, turn, audit):
            if tool.decides_approvals and isinstance(event, ToolFinished) and event.ok:
                decided = event.structured
            yield event
        if decided is not None:
            outcome = await self._carry_out(ApprovalDecision.model_validate(decided))
            if outcome:
                yield ReplyDelta(outcome)

    async def _approval(
        self, tool: ToolDefinition, arguments: dict[str, Any], turn: Turn, audit: TurnAudit
    ) -> AsyncIterator[Event]:
        """Ask for approval and wait for it, marked as waiting (renewed) until the decision or until this
        turn is cancelled or closed; then the mark is released, and an approval decided later runs the call
        detached (``_carry_out``). An approved call runs here only if this turn claims it first."""
        settings = self.services.settings
        async with self.services.bus.subscribe(APPROVALS_DECIDED) as decided:
            record = await self.approvals.request(
                tool.name,
                arguments,
                requested_by=turn.user,
                channel=turn.channel,
                thread_id=turn.thread,
                ttl=settings.approval_ttl,
                requester_role=turn.role,
                alive_for=REQUESTER_ALIVE,
            )
            alive = asyncio.create_task(self._keep_alive(record.id))
            try:
                audit.record(
                    "approval_requested",
                    tool=tool.name,
                    data={"approval": str(record.id), "arguments": self._auditable(tool.name, arguments)},
                )
                await audit.flush()
                yield ApprovalRequired(
                    approval_id=str(record.id),
                    tool=tool.name,
                    arguments=arguments,
                    requested_by=turn.user,
                    expires_at=record.expires_at,
                )
                status = await self._wait_for_decision(str(record.id), decided, record.expires_at)
                if status == "approved" and not await self.approvals.claim_run(record.id, "requester"):
                    status = RAN_DETACHED
            finally:
                await self._stop_waiting(record.id, alive)
        if status == "expired":
            audit.record("approval_expired", tool=tool.name, data={"approval": str(record.id)})
        yield ApprovalResolved(approval_id=str(record.id), tool=tool.name, status=status)

    async def _wait_for_decision(self, approval_id: str, decided: Subscription, expires_at: datetime) -> str:
        """Wake on the decision event from any process; re-read Postgres now and then in case of a miss."""
        while True:
            record = await self.approvals.get(approval_id)
            if record.status != "pending":
                return record.status
            remaining = (expires_at - datetime.now(UTC)).total_seconds()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.05, min(2.0, remaining))):
                    while (await decided.get()).payload.get("id") != approval_id:
                        pass

    async def _keep_alive(self, approval_id: Any) -> None:
        """Renew the mark saying this requester waits, also while the front door holds the event (an MCP
        client or the terminal asking its own person to decide)."""
        while True:
            await asyncio.sleep(REQUESTER_ALIVE / 4)
            try:
                await self.approvals.renew(approval_id, alive_for=REQUESTER_ALIVE)
            except Exception:
                log.warning("could not renew approval %s", approval_id, exc_info=True)

    async def _stop_waiting(self, approval_id: Any, alive: asyncio.Task[None]) -> None:
        """Stop renewing the requester's mark (``alive``) and release it, even while this turn is being
        cancelled (the shield lets the write finish), so a later approval runs the call detached instead
        of waiting for nobody."""
        alive.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await alive  # a renewal under way ends before the release, never after it
        try:
            await asyncio.shield(self.approvals.release(approval_id))
        except Exception:
            log.warning("could not release approval %s; its mark lapses", approval_id, exc_info=True)

    async def _carry_out(self, decision: ApprovalDecision) -> str:
        """After an approver's decision: a sentence saying who runs the approved call. A waiting requester
        runs it in its own turn (a watcher runs it detached should that turn die without taking it up);
        otherwise it runs here, detached, with the result sent to the requester's channel and thread."""
        approval = decision.approval
        if approval.status != "approved":
            return ""
        if approval.requester_waiting:
            watcher = asyncio.create_task(self._run_if_abandoned(approval.id))
            self._watchers.add(watcher)
            watcher.add_done_callback(self._watchers.discard)
            return "The requester is waiting: it runs in their turn and they get the result."
        ran = await self._claim_and_run(approval.id)
        if ran is None:
            return "The requester's turn took it up: it runs there."
        where = "web chat thread" if approval.channel == "web" else f"{approval.channel} channel"
        outcome = "ran" if ran else "failed"
        return f"The requester had left, so it {outcome} now, detached; the result was sent to their {where}."

    async def _claim_and_run(self, approval_id: str) -> bool | None:
        """Run an approved call detached if nobody claimed it yet; None when someone had."""
        if not await self.approvals.claim_run(approval_id, "detached"):
            return None
        return await self._run_detached(await self.approvals.get(approval_id))

    async def _run_if_abandoned(self, approval_id: str) -> None:
        """Until the waiting requester takes up the approved call: if its mark lapses first (its process
        died without releasing it), run the call detached."""
        try:
            while True:
                record = await self.approvals.get(approval_id)
                if record.runner is not None:
                    return
                if not record.requester_waiting:
                    await self._claim_and_run(approval_id)
                    return
                await asyncio.sleep(0.2)
        except Exception:
            log.exception("could not run approval %s after its requester stopped", approval_id)

    async def _run_detached(self, record: ApprovalRecord) -> bool:
        """Run an approved call whose requester left, as that requester (user, role at request time,
        channel, thread): the same policy, bus and audit as a turn. The result is published on
        ``approvals.result.<channel>`` for the requester's thread; returns whether the call succeeded."""
        role = record.requester_role if record.requester_role in _ROLES else "viewer"
        turn = Turn(
            text=f"[approved {record.id}]",
            user=record.requested_by,
            channel=record.channel,
            thread=record.thread_id,
            role=role,  # type: ignore[arg-type]
        )
        audit = TurnAudit(self.services.audit, turn)
        ok, text, call = False, "", None
        try:
            tool = self.services.catalog.get(record.tool)
            tool.validate_arguments(record.arguments)
            decision = policy.decide(tool, turn.role)
            if decision.verdict is policy.Verdict.REFUSE:
                audit.record("refused", tool=tool.name, data={"reason": decision.reason})
                text = decision.reason
            else:
                async for event in self._dispatch(tool, record.arguments, turn, audit):
                    if isinstance(event, ToolFinished):
                        ok, text, call = event.ok, event.text, event.call_id
        except ToolError as err:
            text = str(err)
        topic = approval_result_topic(record.channel)
        audit.record(
            "approval_result_sent",
            tool=record.tool,
            data={"approval": str(record.id), "call": call, "ok": ok, "topic": topic, "detached": True},
        )
        await audit.flush()
        payload = {
            "approval": str(record.id),
            "tool": record.tool,
            "user": record.requested_by,
            "thread": record.thread_id,
            "ok": ok,
            "text": text,
        }
        await self.services.bus.publish(topic, payload)
        return ok

    async def _dispatch(
        self, tool: ToolDefinition, arguments: dict[str, Any], turn: Turn, audit: TurnAudit
    ) -> AsyncIterator[Event]:
        settings = self.services.settings
        call = ToolCall.create(
            tool.name,
            arguments,
            timeout=settings.call_timeout,
            user=turn.user,
            channel=turn.channel,
            thread=turn.thread,
            role=turn.role,
            idempotency_key=turn.call_key(tool.name, arguments),
            side_effects=tool.risk is not Risk.READ,
            repeatable=tool.repeatable,
        )
        yield ToolStarted(call_id=call.call_id, tool=tool.name, agent=tool.agent, arguments=arguments)
        audit.record(
            "tool_call",
            tool=tool.name,
            data={
                "call": call.call_id,
                "agent": tool.agent,
                "arguments": self._auditable(tool.name, arguments),
            },
        )
        if tool.risk is not Risk.READ:
            await audit.flush()  # write-ahead: a call that changes something is on record before it acts
        started = time.perf_counter()
        try:
            result = await self.services.bus.call(tool.agent, call)
        except CallTimeout:
            text = f"The {tool.agent} agent did not answer within {settings.call_timeout:g} s; is it running?"
            ok, structured, agent, summary = False, None, tool.agent, text
        except NoWorker as err:  # nobody serves the agent: said at once, with the command that starts one
            text = f"The {tool.agent} agent is not running. {err}"
            ok, structured, agent, summary = False, None, tool.agent, text
        except BusError as err:
            text = f"Could not reach the {tool.agent} agent: {err}"
            ok, structured, agent, summary = False, None, tool.agent, text
        else:
            text, ok, agent = result.text, not result.is_error, result.agent or tool.agent
            structured = result.result.structuredContent
            summary = tool.auditable_result(text)  # the agent's words may echo what is private
        duration = (time.perf_counter() - started) * 1000
        tool_call_finished(tool.name, ok, duration / 1000, call.call_id)
        audit.record(
            "tool_result",
            tool=tool.name,
            data={
                "call": call.call_id,
                "ok": ok,
                "agent": agent,
                "summary": summary[:500],
                "duration_ms": round(duration, 2),
            },
        )
        yield ToolFinished(
            call_id=call.call_id,
            tool=tool.name,
            agent=agent,
            ok=ok,
            text=text,
            structured=structured,
            duration_ms=duration,
        )
        if not ok:
            yield Failed(text)
        yield ReplyDelta(text)

    # -- helpers ------------------------------------------------------------------------------------------
    async def _with_command(
        self, tool: ToolDefinition, arguments: dict[str, Any], turn: Turn
    ) -> dict[str, Any]:
        """A tool that creates a schedule gets its sentence (``target``) understood now, as the person asking,
        and keeps the tool calls it means (``command``): what runs later is what was meant today, and a
        sentence no template knows, or a command this person may not run, is refused at once."""
        if tool not in self.services.catalog.creating(EntityKind.SCHEDULE) or "target" not in arguments:
            return arguments
        target = str(arguments["target"])
        matches = await self.recognize(replace(turn, text=target, intents=None, speech_confidence=None))
        if not matches:
            raise ToolError(f"I don't know {target!r} as a command, so I can't schedule it.")
        for match in matches:
            command = self.services.catalog.get(match.tool)
            if match.problem is not None:
                raise ToolError(match.problem)
            if command in self.services.catalog.creating(EntityKind.SCHEDULE):
                raise ToolError("A schedule cannot create schedules.")
            if command.private:
                raise PrivateCommandError(
                    f"I can't schedule {command.name}: its words are private, and a schedule keeps its "
                    "sentence to show and run later."
                )
            decision = policy.decide(command, turn.role)
            if decision.verdict is policy.Verdict.REFUSE:
                raise ToolError(f"I can't schedule that: {decision.reason}")
        return {**arguments, "command": [{"tool": m.tool, "arguments": m.arguments} for m in matches]}

    async def decide(
        self,
        approval_id: str,
        *,
        approve: bool,
        user: str,
        role: Role,
        channel: str,
        thread: str | None = None,
    ) -> ReplyDone:
        """Decide an approval as a person did with a button: the same tool, policy and audit as typing it."""
        tool = self.services.catalog.approval_decider()
        turn = Turn(
            text=f"{'approve' if approve else 'reject'} {approval_id}",
            user=user,
            channel=channel,
            thread=thread,
            role=role,
        )
        replies = [
            e.text
            async for e in self.run_tool(tool, {"id": approval_id, "approve": approve}, turn)
            if isinstance(e, ReplyDelta)
        ]
        return ReplyDone(" ".join(replies))

    def safe_suggestions(self, turn: Turn, text: str, limit: int = 3) -> list[str]:
        """Up to ``limit`` example sentences closest to ``text`` that this person may run without anyone's
        approval: a suggestion is clicked without a second thought, so never a dangerous one."""
        safe: list[str] = []
        for example in self.recognizer.suggest(text, 4 * limit):
            tools = [m.tool for m in self.recognizer.recognize(example)]
            if tools and all(
                name in self.services.catalog
                and policy.decide(self.services.catalog.get(name), turn.role).verdict is policy.Verdict.RUN
                for name in tools
            ):
                safe.append(example)
            if len(safe) >= limit:
                break
        return safe

    async def describe_call(
        self, tool_name: str, arguments: dict[str, Any], turn: Turn, *, requested_by: str | None = None
    ) -> str:
        """What a call would do, in words, for an approval card: the owning agent's ``describe`` read tool
        when it serves one (as ``turn``'s person: same policy and audit), else the tool's own description
        with the arguments. A private describer (memory: it names the caller's own facts) is asked only
        when ``turn``'s person made the request (``requested_by``, when known): for anyone else it would
        describe their own data, not the requester's."""
        from tools.builtin.system import CallDescription, describe_tool_name

        tool = self.services.catalog.get(tool_name)
        describer = describe_tool_name(tool.agent)
        own = requested_by in (None, turn.user)
        if describer in self.services.catalog and (
            own or not self.services.catalog.get(describer).result_is_private
        ):
            async for event in self.run_tool(
                self.services.catalog.get(describer), {"tool": tool_name, "arguments": arguments}, turn
            ):
                if isinstance(event, ToolFinished) and event.ok and event.structured:
                    text = CallDescription.model_validate(event.structured).text
                    if text:
                        return text
        said = ", ".join(
            f"{name} “{value}”" for name, value in arguments.items() if isinstance(value, str | int | float)
        )
        action = tool.description.rstrip(".")
        action = action[:1].lower() + action[1:]
        return f"{action} ({said})" if said else action

    def _context(self, turn: Turn) -> ConversationContext:
        key = (turn.user, turn.thread)
        context = self._contexts.get(key)
        if context is None:
            context = self._contexts[key] = ConversationContext()
            if len(self._contexts) > MAX_CONTEXTS:
                self._contexts.popitem(last=False)
        else:
            self._contexts.move_to_end(key)
        return context

    def _keep_private(self, matches: list[IntentMatch], audit: TurnAudit) -> None:
        """A turn asking for a tool with private arguments says them in its words: keep those as a hash."""
        catalog = self.services.catalog
        if any(m.tool in catalog and catalog.get(m.tool).private for m in matches):
            audit.redact_turn_text(self.audit_key)

    def _auditable(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """The arguments as the audit trail keeps them: the tool's private ones as a hash."""
        catalog = self.services.catalog
        return catalog.get(tool).auditable(arguments, self.audit_key) if tool in catalog else dict(arguments)
