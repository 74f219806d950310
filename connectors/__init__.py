"""Slack, Notion and webhook connectors: front doors and tools for outside platforms.

``connectors.web.mount`` serves them in the web server; ``connectors.registry`` supervises them.
"""

from connectors.base import Connector, ConnectorError, Health, HealthState
from connectors.registry import Backoff, ConnectorRegistry

__all__ = ["Backoff", "Connector", "ConnectorError", "ConnectorRegistry", "Health", "HealthState"]
