"""The dashboard in headless Chromium, signed in with the web login cookie: a command appears in the live
feed and the chart within 2 s; approving from the dashboard runs the waiting tool. Screenshots go to
test-artifacts/panel/."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.panel.conftest import PanelServer, run_async
from tests.web.chromium import CHROMIUM, CHROMIUM_ARGS, require_chromium

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "panel"


@pytest.fixture(scope="module")
def dashboard(panel_server: PanelServer) -> Iterator[Any]:
    """The dashboard page, open and live, for an admin signed in through the web login."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    cookie = run_async(panel_server.login_cookie("dash", "admin"))
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        context.add_cookies([{"name": "access_token", "value": cookie, "url": panel_server.url}])
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.goto(f"{panel_server.url}/dashboard")
        page.wait_for_function("document.getElementById('live').textContent === 'live'", timeout=15_000)
        page.wait_for_selector("#agents tr[data-agent]", timeout=15_000)
        yield page
        page.screenshot(path=str(ARTIFACTS / "dashboard-end.png"), full_page=True)
        assert not [p for p in problems if "Content Security Policy" in p], problems
        browser.close()
    print(f"\npanel screenshots: {ARTIFACTS}")


def test_a_command_appears_in_the_feed_and_the_chart_within_2_s(
    dashboard: Any, panel_server: PanelServer
) -> None:
    page = dashboard
    before = int(page.eval_on_selector("#chart", "svg => Number(svg.dataset.total || 0)"))
    started = time.monotonic()
    answer = httpx.post(
        f"{panel_server.url}/api/turns",
        headers=panel_server.headers("operator"),
        json={"text": "what is the status"},
        timeout=30,
    )
    assert answer.json()["complete"]
    page.wait_for_selector("#feed li[data-kind='tool_result'][data-tool='system_status']", timeout=2_000)
    page.wait_for_function(
        f"Number(document.getElementById('chart').dataset.total) > {before}", timeout=2_000
    )
    assert time.monotonic() - started < 2.0 + answer.elapsed.total_seconds()
    assert page.locator("#feed li[data-kind='turn']").first.inner_text().find("what is the status") > 0
    page.screenshot(path=str(ARTIFACTS / "dashboard-feed.png"), full_page=True)


def test_approving_from_the_dashboard_runs_the_waiting_tool(
    dashboard: Any, panel_server: PanelServer
) -> None:
    base, operator = panel_server.url, panel_server.headers("operator")
    created = httpx.post(
        f"{base}/api/schedules",
        headers=operator,
        json={"target": "system status", "when": {"every_seconds": 86400}, "name": "weekly report"},
        timeout=30,
    )
    assert created.status_code == 200, created.text
    answer: dict[str, Any] = {}

    def waiting_turn() -> None:
        answer.update(
            httpx.post(
                f"{base}/api/turns",
                headers=operator,
                json={"text": "delete the schedule weekly report", "wait": 60},
                timeout=90,
            ).json()
        )

    thread = threading.Thread(target=waiting_turn)
    thread.start()
    page = dashboard
    item = page.locator("#approvals li[data-approval]", has_text="schedules_delete")
    item.wait_for(timeout=10_000)
    page.screenshot(path=str(ARTIFACTS / "dashboard-approval.png"), full_page=True)
    item.get_by_role("button", name="Approve").click()
    thread.join(timeout=60)
    finished = [e for e in answer["events"] if e["event"] == "ToolFinished"]
    assert finished and finished[0]["tool"] == "schedules_delete" and finished[0]["ok"]
    page.wait_for_selector("#feed li[data-kind='tool_result'][data-tool='schedules_delete']", timeout=5_000)
    page.wait_for_selector("#feed li[data-kind='approval_decided']", timeout=5_000)
    page.screenshot(path=str(ARTIFACTS / "dashboard-approved.png"), full_page=True)
