"""The control panel API over real HTTP: who may call what, views through read tools, actions through
``Kommandant.run_tool``, an approval decided through the API resuming the waiting turn."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

from assistant.web.panel.auth import Principal, Tickets
from tests.panel.conftest import PanelServer, run_async, wait_until

# (method, path, body, the lowest role allowed)
ROUTES: list[tuple[str, str, dict[str, Any] | None, str]] = [
    ("GET", "/api/overview", None, "viewer"),
    ("GET", "/api/agents", None, "viewer"),
    ("GET", "/api/tools", None, "viewer"),
    ("GET", "/api/calls", None, "viewer"),
    ("GET", "/api/calls/stats", None, "viewer"),
    ("GET", "/api/bots", None, "viewer"),
    ("POST", "/api/bots/nobot/start", None, "operator"),
    ("POST", "/api/bots/nobot/restart", None, "operator"),
    ("POST", "/api/bots/nobot/stop", None, "admin"),
    ("GET", "/api/schedules", None, "viewer"),
    (
        "POST",
        "/api/schedules",
        {"target": "system status", "when": {"every_seconds": 3600}},
        "operator",
    ),
    ("PATCH", "/api/schedules/nosched", {"enabled": False}, "operator"),
    ("DELETE", "/api/schedules/nosched", None, "admin"),
    ("POST", "/api/schedules/nosched/run-now", None, "operator"),
    ("POST", "/api/schedules/nosched/enable", None, "operator"),
    ("POST", "/api/schedules/nosched/disable", None, "operator"),
    ("GET", "/api/schedules/nosched/history", None, "viewer"),
    ("GET", "/api/approvals?status=pending", None, "viewer"),
    ("POST", "/api/approvals/0123abcd/approve", None, "admin"),
    ("POST", "/api/approvals/0123abcd/reject", None, "admin"),
    ("GET", "/api/audit", None, "viewer"),
    ("POST", "/api/audit/verify", None, "admin"),
    ("GET", "/api/dlq", None, "admin"),
    ("POST", "/api/dlq/nothing/replay", None, "admin"),
    ("POST", "/api/turns", {"text": "hello"}, "viewer"),
    ("POST", "/api/events/ticket", None, "viewer"),
    ("GET", "/api/events", None, "viewer"),
]
RANK = {"viewer": 0, "operator": 1, "admin": 2}


def test_every_route_is_listed_here(panel_server: PanelServer) -> None:
    spec = httpx.get(f"{panel_server.url}/api/openapi.json").json()
    listed = {(m, p.split("?")[0]) for m, p, _, _ in ROUTES}
    for path, operations in spec["paths"].items():
        for method in operations:
            concrete = path.replace("{name}", "nobot" if "/bots/" in path else "nosched")
            concrete = concrete.replace("{approval_id}", "0123abcd").replace("{letter_id}", "nothing")
            assert (method.upper(), concrete) in listed, (method, path)


def test_without_a_credential_every_route_answers_401(panel_server: PanelServer) -> None:
    with httpx.Client(base_url=panel_server.url) as client:
        for method, path, body, _ in ROUTES:
            answer = client.request(method, path, json=body)
            assert answer.status_code == 401, (method, path, answer.text)
            assert answer.headers["www-authenticate"] == "Bearer"
            wrong = client.request(method, path, json=body, headers={"Authorization": "Bearer kmd_wrong"})
            assert wrong.status_code == 401, (method, path)


def test_a_role_below_the_route_gets_403(panel_server: PanelServer) -> None:
    with httpx.Client(base_url=panel_server.url, timeout=30) as client:
        for method, path, body, needed in ROUTES:
            for role in ("viewer", "operator"):
                if RANK[role] >= RANK[needed]:
                    continue
                answer = client.request(method, path, json=body, headers=panel_server.headers(role))
                assert answer.status_code == 403, (role, method, path, answer.text)
    # the two the issue names
    viewer_approves = httpx.post(
        f"{panel_server.url}/api/approvals/0123abcd/approve", headers=panel_server.headers("viewer")
    )
    operator_deletes = httpx.delete(
        f"{panel_server.url}/api/schedules/nosched", headers=panel_server.headers("operator")
    )
    assert viewer_approves.status_code == operator_deletes.status_code == 403


def test_views_read_through_tools_and_are_audited(panel_server: PanelServer) -> None:
    headers = panel_server.headers("viewer")
    with httpx.Client(base_url=panel_server.url, headers=headers, timeout=30) as client:
        overview = client.get("/api/overview").json()
        assert overview["agents_total"] >= 6 and overview["dlq_size"] is None  # the DLQ is for admins
        tools = {t["name"]: t for t in client.get("/api/tools").json()}
        assert tools["schedules_delete"]["risk"] == "dangerous" and tools["memory_remember"]["input_schema"]
        audit = client.get("/api/audit", params={"limit": 100}).json()["rows"]
        assert any(r["kind"] == "tool_call" and r["actor"] == "viewer" for r in audit)
        calls = client.get("/api/calls", params={"include_panel": True, "tool": "system_status"}).json()
        assert calls["calls"] and all(
            c["tool"] == "system_status" and c["user"] == "viewer" for c in calls["calls"]
        )
        assert client.get("/api/calls").json()["calls"] == []  # the views' own reads are left out by default
    admin = httpx.get(f"{panel_server.url}/api/overview", headers=panel_server.headers("admin")).json()
    assert admin["dlq_size"] == 0 and admin["audit_head"] >= 1


def test_a_turn_through_the_api_and_its_calls(panel_server: PanelServer) -> None:
    headers = panel_server.headers("operator")
    with httpx.Client(base_url=panel_server.url, headers=headers, timeout=30) as client:
        turn = client.post("/api/turns", json={"text": "what is the status"}).json()
        assert turn["complete"] and [e["event"] for e in turn["events"]][-1] == "ReplyDone"
        assert any(e["event"] == "ToolFinished" and e["tool"] == "system_status" for e in turn["events"])
        calls = client.get("/api/calls", params={"tool": "system_status", "outcome": "ok"}).json()["calls"]
        assert calls[0]["channel"] == "api" and calls[0]["ok"] and calls[0]["duration_ms"] > 0
        other = httpx.get(f"{panel_server.url}/api/calls", headers=panel_server.headers("viewer")).json()
        assert all(c["user"] == "viewer" for c in other["calls"])  # a viewer sees only their own calls
        missing = client.post("/api/schedules/nosched/run-now")
        assert missing.status_code == 400 and missing.json()["status"] == "failed"


def test_an_approval_decided_through_the_api_resumes_the_waiting_turn(panel_server: PanelServer) -> None:
    """An operator's dangerous command waits in its turn; the admin approves it through the API; the
    turn goes on and runs the tool, and the audit trail has the request, the decision and the call."""
    base = panel_server.url
    created = httpx.post(
        f"{base}/api/schedules",
        headers=panel_server.headers("operator"),
        json={"target": "system status", "when": {"every_seconds": 3600}, "name": "nightly"},
        timeout=30,
    )
    assert created.status_code == 200, created.text
    answer: dict[str, Any] = {}

    def waiting_turn() -> None:
        answer.update(
            httpx.post(
                f"{base}/api/turns",
                headers=panel_server.headers("operator"),
                json={"text": "delete the schedule nightly", "wait": 60},
                timeout=90,
            ).json()
        )

    thread = threading.Thread(target=waiting_turn)
    thread.start()
    admin = panel_server.headers("admin")

    def pending() -> list[dict[str, Any]]:
        found = httpx.get(f"{base}/api/approvals", headers=admin).json()["approvals"]
        return [a for a in found if a["tool"] == "schedules_delete"]

    approval = wait_until(pending, timeout=20)[0]
    assert approval["requester_waiting"]
    decided = httpx.post(f"{base}/api/approvals/{approval['id']}/approve", headers=admin, timeout=30)
    assert decided.status_code == 200 and decided.json()["result"]["approval"]["status"] == "approved"
    thread.join(timeout=60)
    kinds = [e["event"] for e in answer["events"]]
    assert answer["complete"] and kinds.index("ApprovalRequired") < kinds.index("ToolFinished")
    finished = next(e for e in answer["events"] if e["event"] == "ToolFinished")
    assert finished["tool"] == "schedules_delete" and finished["ok"]
    rows = httpx.get(f"{base}/api/audit", headers=admin, params={"limit": 200}).json()["rows"]
    kinds_seen = [r["kind"] for r in rows]
    assert {"approval_requested", "approval_decided"} <= set(kinds_seen)
    assert "nightly" not in [
        s["name"] for s in httpx.get(f"{base}/api/schedules", headers=admin).json()["schedules"]
    ]


def test_dangerous_actions_answer_202_with_the_approval(panel_server: PanelServer) -> None:
    admin = panel_server.headers("admin")
    answer = httpx.delete(f"{panel_server.url}/api/schedules/nosched", headers=admin, timeout=30)
    assert answer.status_code == 202 and answer.json()["approval_id"]
    rejected = httpx.post(
        f"{panel_server.url}/api/approvals/{answer.json()['approval_id']}/reject",
        headers=admin,
        json={"reason": "test"},
        timeout=30,
    )
    assert rejected.status_code == 200 and rejected.json()["result"]["approval"]["status"] == "rejected"


def test_audit_verify_is_for_admins_and_audited(panel_server: PanelServer) -> None:
    admin = panel_server.headers("admin")
    report = httpx.post(f"{panel_server.url}/api/audit/verify", headers=admin, timeout=30).json()
    assert report["ok"] and report["rows_checked"] > 0
    rows = httpx.get(f"{panel_server.url}/api/audit", headers=admin, params={"kind": "audit_verified"}).json()
    assert rows["rows"] and rows["rows"][0]["actor"] == "admin"
    missing = httpx.post(f"{panel_server.url}/api/dlq/nothing/replay", headers=admin)
    assert missing.status_code == 404


def test_login_cookie_and_tickets(panel_server: PanelServer) -> None:
    cookie = run_async(panel_server.login_cookie("carol", "viewer"))
    with httpx.Client(base_url=panel_server.url, cookies={"access_token": cookie}) as client:
        assert client.get("/api/bots").status_code == 200
        assert client.post("/api/bots/x/start").status_code == 403
        ticket = client.post("/api/events/ticket").json()
    assert httpx.get(f"{panel_server.url}/api/bots", params={"ticket": ticket["ticket"]}).status_code == 401
    forged = httpx.get(f"{panel_server.url}/api/bots", cookies={"access_token": cookie + "x"})
    assert forged.status_code == 401
    tickets = Tickets("secret", ttl=60, clock=lambda: 1000.0)
    issued = tickets.issue(Principal("dana", "operator", "cookie"))
    assert tickets.verify(issued) == Principal("dana", "operator", "ticket")
    assert Tickets("other").verify(issued) is None and tickets.verify(issued[:-2] + "00") is None
    assert Tickets("secret", clock=lambda: 1061.0).verify(issued) is None  # expired


def test_docs_and_dashboard_are_served_offline(panel_server: PanelServer) -> None:
    docs = httpx.get(f"{panel_server.url}/api/docs")
    assert docs.status_code == 200 and "http" not in docs.text.replace("http-equiv", "")
    assert "<script>" not in docs.text  # no inline script: the page CSP allows none
    bundle = httpx.get(f"{panel_server.url}/api/docs/assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 100_000
    page = httpx.get(f"{panel_server.url}/dashboard")
    assert page.status_code == 200 and "dashboard.js" in page.text and "<script>" not in page.text
    assert httpx.get(f"{panel_server.url}/dashboard/static/dashboard.js").status_code == 200


@pytest.mark.parametrize("role", ["admin"])
def test_dlq_lists_for_admins(panel_server: PanelServer, role: str) -> None:
    started = time.monotonic()
    assert httpx.get(f"{panel_server.url}/api/dlq", headers=panel_server.headers(role)).json() == []
    assert time.monotonic() - started < 5
