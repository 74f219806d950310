"""Approval tools: list pending approvals and decide one."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from tools.builtin.base import ApprovalId, ShortText, ToolInput, ToolOutput
from tools.definition import Risk, ToolDefinition

AGENT = "system"


class ApprovalsListInput(ToolInput):
    """List the approvals waiting for a decision."""


POSITIONS: dict[str, int] = {
    "first": 0, "second": 1, "third": 2, "fourth": 3, "fifth": 4, "sixth": 5, "seventh": 6, "eighth": 7,
    "ninth": 8, "tenth": 9, "oldest": 0, "last": -1, "latest": -1, "newest": -1,
}  # fmt: skip
"""Words naming a pending approval by its place in the list, oldest first (-1: the newest). None of them
can start an id, which is hex digits and dashes."""


def approval_position(reference: str) -> int | None:
    """The index among pending approvals, oldest first, that ``reference`` names ("second" -> 1, "last"
    -> -1), or None when it is an id or a prefix of one."""
    return POSITIONS.get(reference.strip().lower())


class ApprovalsDecideInput(ToolInput):
    """Approve or reject a pending approval."""

    id: ApprovalId = Field(
        description="The approval's id (or a unique prefix of it), or its place among pending approvals as "
        "approvals_list shows them, oldest first: 'first', 'second', … 'tenth', or 'last' for the newest."
    )
    approve: bool = Field(description="True to approve, false to reject.")
    reason: ShortText | None = Field(default=None, description="Why, for the audit trail.")


class ApprovalInfo(ToolOutput):
    """One approval request for a dangerous tool call."""

    id: str = Field(description="The approval's id.")
    tool: str = Field(description="The tool that waits for approval.")
    arguments: dict[str, Any] = Field(default_factory=dict, description="The arguments it would run with.")
    requested_by: str = Field(description="Who asked for the call.")
    status: Literal["pending", "approved", "rejected", "expired"] = Field(description="The decision so far.")
    expires_at: datetime = Field(description="When the request lapses without a decision.")
    channel: str = Field(default="", description="The front door the request came from (web, cli, mcp).")
    requester_waiting: bool = Field(
        default=False,
        description="Whether the requester still waits for the decision; if not, an approved call runs "
        "detached and its result is sent to the requester's channel and thread.",
    )

    def delivery(self) -> str:
        """What approving it does, in words for the approver."""
        if self.requester_waiting:
            return "the requester is waiting and gets the result"
        where = "web chat thread" if self.channel == "web" else f"{self.channel or 'original'} channel"
        return f"the requester left; the result will be sent to their {where}"

    def summary(self) -> str:
        return f"{self.id}: {self.tool} for {self.requested_by} ({self.status}; {self.delivery()})."


class ApprovalList(ToolOutput):
    """Approvals waiting for a decision."""

    approvals: list[ApprovalInfo] = Field(
        default_factory=list, description="Pending approvals, oldest first."
    )

    def summary(self) -> str:
        if not self.approvals:
            return "Nothing is waiting for approval."
        count = len(self.approvals)
        noun = "approval is" if count == 1 else "approvals are"
        shown = " ".join(a.summary() for a in self.approvals[:5])
        more = f" … and {count - 5} more." if count > 5 else ""
        return f"{count} {noun} pending, oldest first: {shown}{more}"


class ApprovalDecision(ToolOutput):
    """The decided approval."""

    approval: ApprovalInfo = Field(description="The approval after the decision.")

    def summary(self) -> str:
        verb = "Approved" if self.approval.status == "approved" else "Rejected"
        return f"{verb} {self.approval.tool} ({self.approval.id})."


LIST = ToolDefinition(
    name="approvals_list",
    description="List the dangerous tool calls waiting for a person's approval.",
    agent=AGENT,
    input_model=ApprovalsListInput,
    output_model=ApprovalList,
    risk=Risk.READ,
)
DECIDE = ToolDefinition(
    name="approvals_decide",
    description="Approve or reject a pending approval by id, or by its place among pending approvals "
    "counted oldest first as approvals_list shows them ('first', 'second', …); 'last' is the newest.",
    agent=AGENT,
    input_model=ApprovalsDecideInput,
    output_model=ApprovalDecision,
    risk=Risk.WRITE,
    decides_approvals=True,
)

TOOLS = (LIST, DECIDE)
