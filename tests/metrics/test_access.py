"""Who may read ``/metrics`` on the web server: this machine only by default, everyone with the bearer
token once ``KOMMANDANT_METRICS_TOKEN`` is set, and nobody without it then."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from pydantic import SecretStr

from assistant.runtime import Runtime
from assistant.web.metrics import mount_metrics
from settings import Settings


def _starting() -> Runtime:
    raise RuntimeError("Kommandant is still starting")


def _client(app: FastAPI, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000")


async def test_without_a_token_only_this_machine_may_scrape() -> None:
    app = FastAPI()
    mount_metrics(app, Settings(_env_file=None), _starting)
    async with _client(app, "127.0.0.1") as local, _client(app, "203.0.113.9") as remote:
        answer = await local.get("/metrics")
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert 'kommandant_scrape_source_up{source="postgres"} 0.0' in answer.text
        assert (await remote.get("/metrics")).status_code == 403
    assert "/metrics" not in app.openapi()["paths"]


async def test_with_a_token_every_client_must_bring_it() -> None:
    app = FastAPI()
    mount_metrics(app, Settings(_env_file=None, metrics_token=SecretStr("s3cret-scrape")), _starting)
    async with _client(app, "127.0.0.1") as local, _client(app, "203.0.113.9") as remote:
        assert (await local.get("/metrics")).status_code == 401
        refused = await remote.get("/metrics", headers={"Authorization": "Bearer s3cret-scrapE"})
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert "s3cret" not in refused.text
        allowed = await remote.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape"})
        assert allowed.status_code == 200 and "kommandant_turns" in allowed.text
        openmetrics = await local.get(
            "/metrics",
            headers={"Authorization": "Bearer s3cret-scrape", "Accept": "application/openmetrics-text"},
        )
        assert openmetrics.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
        assert openmetrics.text.endswith("# EOF\n")
