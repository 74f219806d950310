"""MCP prompts for common tasks, as data: each tells the assistant which Kommandant tools to use.

Every prompt and every argument has a description; an argument that names a live thing (a bot, a
schedule, a reminder, a document) carries the ``NameSource`` it completes from. Prompts name tools by
their definitions, never by a string of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.prompts.base import Prompt, PromptArgument

from mcp_server.completions import BOTS, DOCUMENTS, REMINDERS, SCHEDULES, Completions, NameSource
from tools.builtin import approvals as approval_tools
from tools.builtin import bots as bot_tools
from tools.builtin import knowledge as knowledge_tools
from tools.builtin import memory as memory_tools
from tools.builtin import reminders as reminder_tools
from tools.builtin import schedules as schedule_tools
from tools.builtin import system as system_tools


@dataclass(frozen=True, slots=True)
class Argument:
    """One argument of a prompt (always required)."""

    name: str
    description: str
    names: NameSource | None = None
    """Where its live names come from, for ``completion/complete``; None for free text."""


@dataclass(frozen=True, slots=True)
class PromptSpec:
    """A prompt: ``text`` is a ``str.format`` template over the arguments' names (``{topic!r}``)."""

    name: str
    title: str
    description: str
    text: str
    arguments: tuple[Argument, ...] = ()

    def render(self, **given: Any) -> str:
        """The prompt's text with the arguments filled in; ``ValueError`` for unknown arguments."""
        unknown = set(given) - {argument.name for argument in self.arguments}
        if unknown:
            raise ValueError(f"The prompt {self.name} has no argument {', '.join(sorted(unknown))}.")
        return self.text.format(**{name: str(value) for name, value in given.items()})


PROMPTS: tuple[PromptSpec, ...] = (
    PromptSpec(
        "remember", "Remember a fact", "Have Kommandant remember a fact.",
        f"Use Kommandant's {memory_tools.REMEMBER.name} tool to remember this fact, then confirm it: "
        "{fact}",
        (Argument("fact", "The fact, e.g. 'my editor is vim'."),),
    ),
    PromptSpec(
        "recall", "What do you remember", "Recall facts about a topic.",
        f"Use Kommandant's {memory_tools.RECALL.name} tool with the query {{topic!r}} and answer from what "
        "it returns. Say so plainly if nothing is remembered.",
        (Argument("topic", "What to recall, e.g. 'my editor'."),),
    ),
    PromptSpec(
        "status_report", "Status report", "Health, approvals, recent activity.",
        f"Give me a short status report of Kommandant: call {system_tools.STATUS.name} (which agents are "
        f"up), {approval_tools.LIST.name} (what waits for a decision) and {system_tools.AUDIT_RECENT.name} "
        "with limit 10 (what happened), then summarise in at most five bullet points.",
    ),
    PromptSpec(
        "plan_reminders", "Plan reminders", "Turn a to-do list into reminders.",
        f"Create one Kommandant reminder per item of this to-do list with {reminder_tools.CREATE.name}, "
        f"choosing sensible times today unless an item says otherwise; then list them with "
        f"{reminder_tools.LIST.name}:\n{{todo}}",
        (Argument("todo", "The to-do list, one item per line, with times where known."),),
    ),
    PromptSpec(
        "search_knowledge", "Answer from the knowledge base",
        "Answer a question from the documents in the knowledge base, citing them.",
        f"Answer this question from Kommandant's knowledge base: call {knowledge_tools.SEARCH.name} with "
        "it, cite the sources you use, and say when the knowledge base has no answer.\n\n"
        "Question: {question}",
        (Argument("question", "The question to answer from the documents."),),
    ),
    PromptSpec(
        "bot_report", "Report on a bot", "How one bot is doing: its state, restarts and the end of its log.",
        f"Report on Kommandant's bot {{bot!r}}: call {bot_tools.STATUS.name} and {bot_tools.LOGS.name} with "
        "its name, then say in three sentences whether it is healthy and what its log shows.",
        (Argument("bot", "The bot's name (completes from the registered bots).", BOTS),),
    ),
    PromptSpec(
        "schedule_review", "Review a schedule",
        "What one schedule does, when it runs next, and how its latest runs went.",
        f"Review Kommandant's schedule {{schedule!r}}: call {schedule_tools.LIST.name} for what it does and "
        f"when it runs next, and {schedule_tools.HISTORY.name} for its latest runs; point out failures.",
        (Argument("schedule", "The schedule's name (completes from the schedules you may see).", SCHEDULES),),
    ),
    PromptSpec(
        "reschedule_reminder", "Move a reminder", "Cancel one of your reminders and create it again later.",
        f"Move my Kommandant reminder {{reminder!r}} to {{when}}: cancel it with "
        f"{reminder_tools.CANCEL.name}, create it again with {reminder_tools.CREATE.name}, and confirm the "
        "new time.",
        (
            Argument("reminder", "The reminder's text (completes from your pending reminders).", REMINDERS),
            Argument("when", "The new time, e.g. 'tomorrow at nine'."),
        ),
    ),
    PromptSpec(
        "summarise_document", "Summarise a document", "Summarise one document of the knowledge base.",
        f"Summarise the document {{title!r}} of Kommandant's knowledge base: call "
        f"{knowledge_tools.SEARCH.name} with its title and main topics, and summarise what the passages "
        "from that document say.",
        (Argument("title", "The document's title (completes from the knowledge base).", DOCUMENTS),),
    ),
)  # fmt: skip


def register_prompts(server: FastMCP[Any], completions: Completions) -> None:
    """Add ``PROMPTS`` to ``server``, and their live-name arguments to ``completions``."""
    for spec in PROMPTS:
        arguments = [
            PromptArgument(name=a.name, description=a.description, required=True) for a in spec.arguments
        ]
        server.add_prompt(
            Prompt(
                name=spec.name,
                title=spec.title,
                description=spec.description,
                arguments=arguments,
                fn=spec.render,
            )
        )
        for argument in spec.arguments:
            if argument.names is not None:
                completions.add(spec.name, argument.name, argument.names)


__all__ = ["PROMPTS", "Argument", "PromptSpec", "register_prompts"]
