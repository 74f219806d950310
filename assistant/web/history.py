"""Chat threads in Postgres: Chainlit's SQLAlchemy data layer on Kommandant's own database engine.

Chainlit's ``SQLAlchemyDataLayer`` would open a second connection pool from a URL; the embedded
database's URL is a Unix socket known only after it started, and one pool per process is enough. So
this subclass borrows the engine of the running ``Database`` (bound in the web app's lifespan) and
leaves closing it to the ``Runtime``. The tables come from migration 0002.

Uploaded files are not kept as thread elements: there is no blob store in the embedded default, and the
files' content goes into the knowledge base instead. Thread history keeps the message that carried them.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from chainlit.data.sql_alchemy import SQLAlchemyDataLayer
from chainlit.data.utils import queue_until_user_message
from chainlit.types import Feedback, PaginatedResponse, Pagination, ThreadDict, ThreadFilter

from storage import Database

log = logging.getLogger(__name__)

USER_THREAD_LIMIT = 1000
"""Most threads listed per person in the sidebar (Chainlit's default)."""
WRITE_DELAY_S = 0.3
"""How long thread writes wait before they are saved (in order, by one writer): a turn's first reply
token goes out before its messages and steps are written, instead of competing with ~6 writes."""

_Write = Callable[..., Awaitable[Any]]
# Chainlit's own methods without their "queue until the first message" wrapper: that check is made
# when Chainlit calls ours, and the writer then saves with the plain methods.
_CREATE_STEP: _Write = SQLAlchemyDataLayer.create_step.__wrapped__
_DELETE_STEP: _Write = SQLAlchemyDataLayer.delete_step.__wrapped__
_UPDATE_THREAD: _Write = SQLAlchemyDataLayer.update_thread
_in_writer: contextvars.ContextVar[bool] = contextvars.ContextVar("in_chat_writer", default=False)


class KommandantDataLayer(SQLAlchemyDataLayer):
    """Chainlit's data layer, bound to the database of the running web process.

    Writes (steps, messages, thread updates) are saved shortly after they happen, in order, by one
    writer task; every read (a thread, the thread list, an author check, feedback) first waits for the
    pending writes, so what is read is what was shown. ``flush`` runs at shutdown.
    """

    def __init__(self) -> None:  # no super().__init__: it would create an engine of its own
        self._conninfo = ""
        self.user_thread_limit = USER_THREAD_LIMIT
        self.show_logger = False
        self.storage_provider = None
        self._bound = False
        self.write_delay = WRITE_DELAY_S
        self._pending: deque[tuple[_Write, tuple[Any, ...], dict[str, Any]]] = deque()
        self._writer: asyncio.Task[None] | None = None
        self._hurry = asyncio.Event()

    def bind(self, database: Database) -> None:
        """Use ``database``'s engine and sessions (called when the runtime opens)."""
        self.engine = database.engine
        self.async_session = database.sessionmaker
        self._bound = True

    @property
    def bound(self) -> bool:
        """Whether a database is attached (requests before start-up find none)."""
        return self._bound

    # -- writes: saved in order, a moment later ---------------------------------------------------
    async def _later(self, write: _Write, *args: Any, **kwargs: Any) -> None:
        if _in_writer.get():  # a write made by a write (create_step updates its thread first)
            await write(self, *args, **kwargs)
            return
        self._pending.append((write, args, kwargs))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_pending())

    async def _write_pending(self) -> None:
        _in_writer.set(True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._hurry.wait(), self.write_delay)
        while self._pending:
            write, args, kwargs = self._pending.popleft()
            try:
                await write(self, *args, **kwargs)
            except Exception:
                log.warning("could not save a chat step or thread", exc_info=True)
        self._hurry.clear()

    async def flush(self) -> None:
        """Wait until every pending write is saved (before reads and at shutdown)."""
        while self._writer is not None and not self._writer.done():
            self._hurry.set()
            await asyncio.shield(self._writer)

    @queue_until_user_message()
    async def create_step(self, step_dict: Any) -> None:
        await self._later(_CREATE_STEP, _as_shown(step_dict))

    @queue_until_user_message()
    async def update_step(self, step_dict: Any) -> None:
        await self._later(_CREATE_STEP, _as_shown(step_dict))  # Chainlit's update is an upsert too

    @queue_until_user_message()
    async def delete_step(self, step_id: str) -> None:
        await self._later(_DELETE_STEP, step_id)

    async def update_thread(
        self,
        thread_id: str,
        name: str | None = None,
        user_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        tags: list[str] | None = None,
    ) -> None:
        await self._later(_UPDATE_THREAD, thread_id, name, user_id, metadata, tags)

    # -- reads and deletes: after the pending writes ----------------------------------------------
    async def get_thread(self, thread_id: str) -> ThreadDict | None:
        await self.flush()
        return await super().get_thread(thread_id)

    async def get_thread_author(self, thread_id: str) -> str:
        await self.flush()
        return await super().get_thread_author(thread_id)

    async def list_threads(
        self, pagination: Pagination, filters: ThreadFilter
    ) -> PaginatedResponse[ThreadDict]:
        await self.flush()
        return await super().list_threads(pagination, filters)

    async def delete_thread(self, thread_id: str) -> None:
        await self.flush()
        await super().delete_thread(thread_id)

    async def upsert_feedback(self, feedback: Feedback) -> str:
        await self.flush()
        return await super().upsert_feedback(feedback)

    async def step_thread(self, step_id: str) -> tuple[str, str | None] | None:
        """(thread id, identifier of the thread's owner) of a step; None when there is no such step."""
        if not _is_uuid(step_id):
            return None
        await self.flush()
        rows = await self.execute_sql(
            'SELECT t."id", t."userIdentifier" FROM steps s JOIN threads t ON t."id" = s."threadId" '
            'WHERE s."id" = :id',
            {"id": step_id},
        )
        if not isinstance(rows, list) or not rows:
            return None
        return str(rows[0]["id"]), rows[0]["userIdentifier"]

    async def feedback_step(self, feedback_id: str) -> str | None:
        """The step a saved feedback is on; None when there is no such feedback."""
        if not _is_uuid(feedback_id):
            return None
        rows = await self.execute_sql('SELECT "forId" FROM feedbacks WHERE "id" = :id', {"id": feedback_id})
        return str(rows[0]["forId"]) if isinstance(rows, list) and rows else None

    async def create_element(self, element: Any) -> None:
        """Elements are not persisted (no blob store); see the module docstring."""

    async def close(self) -> None:
        """The runtime owns the engine and disposes it; only pending writes are finished here."""
        await self.flush()


def _as_shown(step_dict: Any) -> Any:
    """The step as the page showed it. Chainlit's upsert skips ``None`` values, so a tool step that began
    as JSON (its arguments) and ended as Markdown (its result, ``language=None``) would keep "json" and
    come back from history as a code block with literal ``**``: "" is saved instead (no language, which
    the page renders as Markdown)."""
    if isinstance(step_dict, dict) and "language" in step_dict and step_dict["language"] is None:
        return {**step_dict, "language": ""}
    return step_dict


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, TypeError):
        return False
    return True
