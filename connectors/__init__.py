"""Slack, Notion and webhook connectors: front doors and tools for outside platforms."""

from connectors.base import Connector, ConnectorError, Health, HealthState

__all__ = ["Connector", "ConnectorError", "Health", "HealthState"]
