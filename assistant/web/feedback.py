"""Thumbs up or down on chat messages: only on the messages of one's own threads.

Chainlit's ``/feedback`` routes let any signed-in person write or delete feedback on any step, and its
upsert takes over any saved feedback whose id the request names. These routes answer first (they are
registered before the chat is mounted): they check that the step, and a saved feedback being replaced or
deleted, lie in a thread of the signed-in person, pin the feedback to the step's real thread, and then
hand over to Chainlit's own handlers (which save it and call ``on_feedback``).
"""

from __future__ import annotations

from collections.abc import Callable

from chainlit.server import UserParam
from chainlit.server import delete_feedback as chainlit_delete_feedback
from chainlit.server import update_feedback as chainlit_update_feedback
from chainlit.types import DeleteFeedbackRequest, UpdateFeedbackRequest
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from assistant.web.history import KommandantDataLayer

NOT_YOURS = "Feedback can only be given on messages of your own chats."


def feedback_routes(path: str, history: Callable[[], KommandantDataLayer]) -> APIRouter:
    """PUT and DELETE ``{path}/feedback``, checked against the thread owner, then Chainlit's handlers."""
    router = APIRouter()

    async def own_step(user: str, step_id: str) -> str:
        """The thread id of ``step_id`` when ``user`` owns that thread, else 403."""
        found = await history().step_thread(step_id)
        if found is None or found[1] != user:
            raise HTTPException(status_code=403, detail=NOT_YOURS)
        return found[0]

    async def own_feedback(user: str, feedback_id: str | None) -> None:
        """403 unless ``feedback_id`` is new or on a step of ``user``'s threads."""
        if not feedback_id:
            return
        step_id = await history().feedback_step(feedback_id)
        if step_id is not None:
            await own_step(user, step_id)

    @router.put(f"{path}/feedback", include_in_schema=False)
    async def update_feedback(
        request: Request, update: UpdateFeedbackRequest, current_user: UserParam
    ) -> Response:
        user = _identifier(current_user)
        update.feedback.threadId = await own_step(user, update.feedback.forId)
        await own_feedback(user, update.feedback.id)
        response: Response = await chainlit_update_feedback(request, update, current_user)
        return response

    @router.delete(f"{path}/feedback", include_in_schema=False)
    async def delete_feedback(
        request: Request, payload: DeleteFeedbackRequest, current_user: UserParam
    ) -> Response:
        user = _identifier(current_user)
        step_id = await history().feedback_step(payload.feedbackId)
        if step_id is None:
            raise HTTPException(status_code=403, detail=NOT_YOURS)
        await own_step(user, step_id)
        response: Response = await chainlit_delete_feedback(request, payload, current_user)
        return response

    return router


def _identifier(current_user: object) -> str:
    identifier = getattr(current_user, "identifier", None)
    if not identifier:
        raise HTTPException(status_code=401, detail="Unauthorized")
    return str(identifier)
