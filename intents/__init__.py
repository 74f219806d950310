"""Intents: text -> tool calls (``IntentMatch``), by sentence templates beside the tools.

Pure: no database, bus or network; the caller passes live names and conversation context in.
"""

from intents.chatter import Chat
from intents.models import ConversationContext, IntentMatch, LiveLists, Mention, Topic
from intents.normalize import Utterance, normalize
from intents.recognizer import MIN_CONFIDENCE, Recognizer
from intents.templates import load_templates
from intents.timeparse import parse_duration, parse_moment, parse_recurrence

__all__ = [
    "MIN_CONFIDENCE",
    "Chat",
    "ConversationContext",
    "IntentMatch",
    "LiveLists",
    "Mention",
    "Recognizer",
    "Topic",
    "Utterance",
    "load_templates",
    "normalize",
    "parse_duration",
    "parse_moment",
    "parse_recurrence",
]
