"""Slack, Notion and webhook connectors. Not built yet."""
