"""The notion agent: Notion data sources and pages into the knowledge base, notes back to Notion."""

from agents.notion.agent import PROGRESS_TOPIC, SYNC_FINISHED_TOPIC, NotionAgent
from agents.notion.client import NOTION_VERSION, NotionApi, NotionError, NotionNotFound, notion_id

__all__ = [
    "NOTION_VERSION",
    "PROGRESS_TOPIC",
    "SYNC_FINISHED_TOPIC",
    "NotionAgent",
    "NotionApi",
    "NotionError",
    "NotionNotFound",
    "notion_id",
]
