"""schemathesis against the running server's ``/api/openapi.json``: generated requests to every operation
(as an admin, who may reach them all) get no 5xx and no answer outside the documented schema."""

from __future__ import annotations

import time

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.panel.conftest import PanelServer

EXAMPLES = 2
"""Per operation: the suite's time budget; raise it by hand (or run schemathesis's CLI) for a deeper run."""
SKIPPED = {("GET", "/api/events")}
"""The event stream never ends by itself; tests/panel/test_events.py covers it."""
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]


def test_generated_requests_get_no_5xx_and_match_the_schema(panel_server: PanelServer) -> None:
    schema = schemathesis.openapi.from_url(f"{panel_server.url}/api/openapi.json")
    headers = panel_server.headers("admin")
    tested = []
    took: dict[str, float] = {}
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an invalid operation raises here: a failure
        if (operation.method.upper(), operation.path) in SKIPPED:
            continue

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: schemathesis.Case) -> None:
            wait = case.body.get("wait") if isinstance(case.body, dict) else None
            if isinstance(case.body, dict) and isinstance(wait, int | float):
                case.body["wait"] = min(float(wait), 5.0)  # a turn held by an approval
            case.call_and_validate(base_url=panel_server.url, headers=headers, checks=CHECKS, timeout=60)

        started = time.monotonic()
        run()
        took[f"{operation.method.upper()} {operation.path}"] = round(time.monotonic() - started, 2)
        tested.append(operation.path)
    print(sorted(took.items(), key=lambda kv: -kv[1])[:8])
    assert len(set(tested)) >= 20
