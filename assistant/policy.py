"""Who may run what: the tool's risk and the person's role decide run, ask for approval, or refuse."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from assistant.events import Role
from tools import Risk, ToolDefinition


class Verdict(StrEnum):
    RUN = "run"
    APPROVAL = "approval"
    REFUSE = "refuse"


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    reason: str = ""


_MAY_RUN: dict[Role, frozenset[Risk]] = {
    "viewer": frozenset({Risk.READ}),
    "operator": frozenset({Risk.READ, Risk.WRITE, Risk.DANGEROUS}),
    "admin": frozenset({Risk.READ, Risk.WRITE, Risk.DANGEROUS}),
}
_MAY_APPROVE: frozenset[Role] = frozenset({"admin"})


def may_approve(role: Role) -> bool:
    """Whether a person with ``role`` may approve or reject dangerous tool calls."""
    return role in _MAY_APPROVE


def decide(tool: ToolDefinition, role: Role) -> Decision:
    """Run read and write tools the role allows; dangerous ones always wait for a person's approval; a
    tool that decides approvals runs only for roles that may approve."""
    if tool.risk not in _MAY_RUN.get(role, frozenset()):
        return Decision(Verdict.REFUSE, f"As a {role} you may not run {tool.name} ({tool.risk} tool).")
    if tool.decides_approvals and not may_approve(role):
        return Decision(Verdict.REFUSE, f"As a {role} you may not decide approvals; ask an admin.")
    if tool.risk is Risk.DANGEROUS:
        return Decision(Verdict.APPROVAL, f"{tool.name} is dangerous and needs a person's approval.")
    return Decision(Verdict.RUN)
