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


class ApprovalsDecideInput(ToolInput):
    """Approve or reject a pending approval."""

    id: ApprovalId = Field(description="The approval's id (or a unique prefix of it).")
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

    def summary(self) -> str:
        return f"{self.id}: {self.tool} for {self.requested_by} ({self.status})."


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
        return f"{count} {noun} pending; first: {self.approvals[0].summary()}"


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
    description="Approve or reject a pending approval by id.",
    agent=AGENT,
    input_model=ApprovalsDecideInput,
    output_model=ApprovalDecision,
    risk=Risk.WRITE,
    decides_approvals=True,
)

TOOLS = (LIST, DECIDE)
