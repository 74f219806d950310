"""Specialist agents that serve the catalog's tools from the bus."""

from agents.base import Agent, CallContext
from agents.bots.agent import BotsAgent
from agents.errors import AgentError, NotAvailableError
from agents.knowledge import KnowledgeAgent
from agents.memory import MemoryAgent
from agents.notion import NotionAgent
from agents.reminders import RemindersAgent, fired_topic
from agents.scheduler import SchedulerAgent
from agents.services import Services
from agents.slack import SlackAgent
from agents.system import APPROVALS_DECIDED, SystemAgent, approval_result_topic
from agents.worker import AgentWorker

BUILTIN_AGENTS: dict[str, type[Agent]] = {
    agent.name: agent
    for agent in (
        MemoryAgent,
        RemindersAgent,
        SystemAgent,
        KnowledgeAgent,
        BotsAgent,
        SchedulerAgent,
        SlackAgent,
        NotionAgent,
    )
}
"""Every built-in agent by name, as ``kommandant worker <name>`` accepts them."""

__all__ = [
    "APPROVALS_DECIDED",
    "BUILTIN_AGENTS",
    "Agent",
    "AgentError",
    "AgentWorker",
    "CallContext",
    "NotAvailableError",
    "Services",
    "approval_result_topic",
    "fired_topic",
]
