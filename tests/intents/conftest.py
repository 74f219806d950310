from __future__ import annotations

import pytest

from intents import Recognizer
from tests.intents.table import Table, load_table
from tools import Catalog, builtin_catalog


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return builtin_catalog()


@pytest.fixture(scope="session")
def table() -> Table:
    return load_table()


@pytest.fixture(scope="session")
def recognizer(catalog: Catalog, table: Table) -> Recognizer:
    return Recognizer(catalog, timezone=table.timezone)
