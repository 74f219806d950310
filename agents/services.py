"""What agents and the Kommandant share in one process: settings, database, bus, catalog, audit."""

from __future__ import annotations

from dataclasses import dataclass

from bus import Bus
from settings import Settings
from storage import Database
from storage.audit import AuditLog
from tools import Catalog


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    database: Database
    bus: Bus
    catalog: Catalog
    audit: AuditLog
