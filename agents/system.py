"""The system agent: agent status from heartbeats, the recent audit trail, approvals, help (what the
caller may say, from the catalog and its sentence templates), and listings a front door shows."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from agents.base import Agent, CallContext
from agents.services import Services
from storage.approvals import ApprovalRepository
from storage.errors import NotFoundError
from storage.records import AgentRecord, ApprovalRecord
from storage.registry import AgentRegistry
from tools import Catalog, Risk, ToolDefinition
from tools.builtin import approvals as approval_tools
from tools.builtin import system as system_tools
from tools.builtin.approvals import (
    ApprovalDecision,
    ApprovalInfo,
    ApprovalList,
    ApprovalsDecideInput,
    ApprovalsListInput,
    approval_position,
)
from tools.builtin.system import (
    AgentStatus,
    AuditLog,
    AuditRecentInput,
    AuditRow,
    HelpAgent,
    HelpCommand,
    HelpInput,
    HelpResult,
    SystemStatus,
    SystemStatusInput,
)

APPROVALS_DECIDED = "approvals.decided"
"""Topic published when an approval is decided, so a waiting turn in any process resumes at once."""


def approval_result_topic(channel: str) -> str:
    """Topic of the result of an approved call whose requester had left, for one channel: front doors
    subscribe to ``approvals.result.<channel>`` and show it in the payload's thread."""
    return f"approvals.result.{channel}"


def approval_info(record: ApprovalRecord) -> ApprovalInfo:
    return ApprovalInfo(
        id=str(record.id),
        tool=record.tool,
        arguments=record.arguments,
        requested_by=record.requested_by,
        status=record.status,
        expires_at=record.expires_at,
        channel=record.channel,
        requester_waiting=record.requester_waiting,
    )


def agent_status(record: AgentRecord, *, fresh_within: timedelta) -> AgentStatus:
    """An agent is alive when one of its running replicas sent a heartbeat recently."""
    now = datetime.now(UTC)
    alive = [
        i for i in record.instances if i.status == "running" and now - i.last_heartbeat_at <= fresh_within
    ]
    last = max((i.last_heartbeat_at for i in record.instances), default=None)
    return AgentStatus(
        name=record.name, alive=bool(alive), instances=len(alive), tools=record.tools, last_heartbeat=last
    )


class SystemAgent(Agent):
    name = system_tools.AGENT
    description = "Reports on agents and the audit trail, and keeps approvals."

    def __init__(self, services: Services) -> None:
        super().__init__(services)
        self.registry = AgentRegistry(services.database.sessionmaker)
        self.approvals = ApprovalRepository(services.database.sessionmaker)
        self.register(system_tools.STATUS, self.status)
        self.register(system_tools.AUDIT_RECENT, self.recent_audit)
        self.register(system_tools.HELP, self.help)
        self.register(approval_tools.LIST, self.pending_approvals)
        self.register(approval_tools.DECIDE, self.decide_approval)

    async def status(self, args: SystemStatusInput, ctx: CallContext) -> SystemStatus:
        window = timedelta(seconds=3 * self.services.settings.heartbeat_interval)
        return SystemStatus(
            agents=[agent_status(a, fresh_within=window) for a in await self.registry.agents()]
        )

    async def recent_audit(self, args: AuditRecentInput, ctx: CallContext) -> AuditLog:
        """The caller's own rows; an admin's call sees every user's."""
        owner = None if ctx.role == "admin" else ctx.user
        entries = await self.services.audit.tail(args.limit, owner=owner)
        rows = [
            AuditRow(
                seq=e.seq,
                ts=e.ts,
                actor=e.actor,
                kind=e.kind,
                summary_text=_audit_summary(e.kind, e.tool, e.data),
            )
            for e in reversed(entries)
        ]
        return AuditLog(rows=rows)

    async def help(self, args: HelpInput, ctx: CallContext) -> HelpResult:
        """Every command the caller may run, grouped by agent, each with its first example sentence."""
        return help_for(self.services.catalog, ctx.role, template_examples())

    async def pending_approvals(self, args: ApprovalsListInput, ctx: CallContext) -> ApprovalList:
        """Admins (who decide approvals) see every pending one; anyone else only the ones they asked for,
        since the arguments may be private (what to forget, which bot)."""
        return ApprovalList(approvals=[approval_info(r) for r in await self._visible_pending(ctx)])

    async def _visible_pending(self, ctx: CallContext) -> list[ApprovalRecord]:
        pending = await self.approvals.pending()
        if ctx.role != "admin":
            pending = [r for r in pending if r.requested_by == ctx.user]
        return pending

    async def _approval_named(self, reference: str, ctx: CallContext) -> ApprovalRecord:
        """The approval an id, a prefix, or a place in the caller's pending list ("second", "last") names:
        places count oldest first, as the listing of pending approvals shows them to the same caller."""
        position = approval_position(reference)
        if position is None:
            return await self.approvals.find(reference)
        pending = await self._visible_pending(ctx)
        if not pending:
            raise NotFoundError("Nothing is waiting for approval.")
        if position >= len(pending):
            count = "one approval is" if len(pending) == 1 else f"{len(pending)} approvals are"
            raise NotFoundError(f"Only {count} pending; there is no {reference.strip().lower()} one.")
        return pending[position]

    async def decide_approval(self, args: ApprovalsDecideInput, ctx: CallContext) -> ApprovalDecision:
        found = await self._approval_named(args.id, ctx)
        record = await self.approvals.decide(
            found.id, approve=args.approve, decided_by=ctx.user, reason=args.reason
        )
        await self.services.audit.append(
            "approval_decided",
            actor=ctx.user,
            channel=ctx.channel,
            thread_id=ctx.thread,
            tool=record.tool,
            data={
                "approval": str(record.id),
                "status": record.status,
                "reason": record.reason,
                "requester_waiting": record.requester_waiting,
            },
        )
        await self.services.bus.publish(
            APPROVALS_DECIDED, {"id": str(record.id), "status": record.status, "by": ctx.user}
        )
        return ApprovalDecision(approval=approval_info(record))


_PLACEHOLDER_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}")
"""An example naming a made-up id (an upload's): nobody types it, the web chat does it for them."""


@functools.cache
def template_examples() -> dict[str, list[str]]:
    """Example sentences per tool from the built-in sentence templates (read once: they ship with the
    code), so a new tool with templates appears in help by itself."""
    from intents.templates import examples_of, load_templates

    return examples_of(load_templates())


def may_run(tool: ToolDefinition, role: str) -> bool:
    """Whether ``role`` may run ``tool`` at all (the rule of ``assistant.policy``, which agents may not
    import): a viewer reads only, deciding approvals is an admin's; dangerous tools count, they wait for
    an approval."""
    if role == "viewer" and tool.risk is not Risk.READ:
        return False
    return not (tool.decides_approvals and role != "admin")


def help_for(catalog: Catalog, role: str, examples: dict[str, list[str]]) -> HelpResult:
    """The commands ``role`` may run, by agent in alphabetical order, tools in catalog order; a tool with
    no example sentence (an internal one) is left out, since nobody could say it."""
    agents = []
    for agent in catalog.agents():
        commands = []
        for tool in catalog.by_agent(agent):
            said = [e for e in examples.get(tool.name, []) if not _PLACEHOLDER_ID.search(e)]
            if said and may_run(tool, role):
                commands.append(
                    HelpCommand(tool=tool.name, example=said[0], description=tool.description, risk=tool.risk)
                )
        if commands:
            agents.append(HelpAgent(agent=agent, commands=commands))
    return HelpResult(role=role, agents=agents)


def _audit_summary(kind: str, tool: str | None, data: dict[str, Any]) -> str:
    detail = data.get("summary") or data.get("text") or data.get("status") or ""
    return " ".join(part for part in (kind, tool or "", str(detail)[:120]) if part)
