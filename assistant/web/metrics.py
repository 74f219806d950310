"""``/metrics`` in the Prometheus text format: the web server's route and the worker's small server.

A scrape shows the counters and histograms of ``telemetry.metrics`` (of every process sharing
``PROMETHEUS_MULTIPROC_DIR`` when it is set, else of this process), and gauges computed now from Postgres
and the bus: replicas alive and heartbeat age per agent, calls waiting per agent queue, dead letters per
agent, bots running, approvals pending. Those gauges are read at scrape time, not kept by any process,
so they are right however many processes there are. A source that cannot be read is left out, and
``kommandant_scrape_source_up`` says so; the scrape itself still answers.

Who may scrape: the Host check every route has, then the bearer token ``KOMMANDANT_METRICS_TOKEN`` when
one is set; without a token, clients on this machine (loopback) only.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import socket
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from settings import Settings
from telemetry.metrics import multiprocess

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.applications import Starlette

    from agents import Services
    from assistant.runtime import Runtime

__all__ = [
    "METRICS_PATH",
    "gauge_families",
    "metrics_app",
    "metrics_endpoint",
    "mount_metrics",
    "render",
    "serve_metrics",
]

log = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
DLQ_SCAN = 1_000
"""Dead letters read per scrape to count them by agent (the dead-letter queue is one queue for all)."""
SOURCE_TIMEOUT = 5.0
"""Seconds one source (Postgres, the bus) may take before the scrape leaves its gauges out."""
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The text format every Prometheus reads (the names here need none of the newer format's quoting)."""
OPENMETRICS = "application/openmetrics-text"
OPENMETRICS_TYPE = f"{OPENMETRICS}; version=1.0.0; charset=utf-8"
"""Asked for in ``Accept`` (Prometheus does, for exemplars), the answer is in OpenMetrics."""
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
UNAUTHORIZED = "The metrics need a bearer token (KOMMANDANT_METRICS_TOKEN).\n"
NOT_LOCAL = "Without KOMMANDANT_METRICS_TOKEN the metrics answer this machine only.\n"


class _Families:
    """A collector of families computed before the scrape (prometheus_client collects synchronously)."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


class _ProcessMetrics:
    """This process's own counters and histograms (the default registry), added to a scrape's registry."""

    def collect(self) -> Iterator[Metric]:
        return iter(REGISTRY.collect())


async def render(services: Services | None, *, openmetrics: bool = False) -> bytes:
    """One scrape: the counters and histograms, then the gauges read now; in the Prometheus text format,
    or in OpenMetrics (``openmetrics``), which also carries the tool calls' exemplars (their call ids)."""
    registry = CollectorRegistry()
    if multiprocess():
        from prometheus_client.multiprocess import MultiProcessCollector

        MultiProcessCollector(registry)  # every process's files in PROMETHEUS_MULTIPROC_DIR, added up
    else:
        registry.register(_ProcessMetrics())
    registry.register(_Families(await gauge_families(services)))
    if openmetrics:
        from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

        return generate_openmetrics(registry)
    return generate_latest(registry)


async def gauge_families(services: Services | None) -> list[Metric]:
    """The gauges from Postgres and the bus, read now; a source that fails is left out and marked 0 in
    ``kommandant_scrape_source_up`` (None ``services``: the process is still starting)."""
    up = GaugeMetricFamily(
        "kommandant_scrape_source_up",
        "Whether this scrape could read a source of its gauges (postgres, bus): 0 leaves them out.",
        labels=["source"],
    )
    families: list[Metric] = []
    for source, read in (("postgres", _postgres_families), ("bus", _bus_families)):
        ok = False
        if services is not None:
            try:
                async with asyncio.timeout(SOURCE_TIMEOUT):
                    families.extend(await read(services))
                ok = True
            except Exception as err:  # a metrics scrape must not fail because one source is down
                log.warning("metrics: could not read %s: %s", source, err)
        up.add_metric([source], 1.0 if ok else 0.0)
    return [*families, up]


async def _postgres_families(services: Services) -> list[Metric]:
    from storage.models import Approval, BotRun
    from storage.registry import AgentRegistry

    stale_after = 3 * services.settings.heartbeat_interval
    now = datetime.now(UTC)
    instances = GaugeMetricFamily(
        "kommandant_agent_instances",
        f"Replicas of an agent whose last heartbeat is under {stale_after:g} s old.",
        labels=["agent"],
    )
    age = GaugeMetricFamily(
        "kommandant_agent_heartbeat_age_seconds",
        "Seconds since the freshest heartbeat of any running replica of an agent.",
        labels=["agent"],
    )
    for agent in await AgentRegistry(services.database.sessionmaker).agents():
        running = [i for i in agent.instances if i.status == "running"]
        ages = [(now - i.last_heartbeat_at).total_seconds() for i in running]
        instances.add_metric([agent.name], float(sum(a < stale_after for a in ages)))
        if ages:
            age.add_metric([agent.name], max(0.0, min(ages)))
    async with services.database.sessionmaker() as session:
        bots = await session.scalar(
            select(func.count(func.distinct(BotRun.bot_id))).where(
                BotRun.status == "running", BotRun.ended_at.is_(None)
            )
        )
        approvals = await session.scalar(
            select(func.count()).where(Approval.status == "pending", Approval.expires_at > func.now())
        )
    return [
        instances,
        age,
        GaugeMetricFamily(
            "kommandant_bots_running", "Bots whose process is running.", value=float(bots or 0)
        ),
        GaugeMetricFamily(
            "kommandant_approvals_pending",
            "Approvals waiting for a person's decision (not expired).",
            value=float(approvals or 0),
        ),
    ]


async def _bus_families(services: Services) -> list[Metric]:
    from storage.registry import AgentRegistry

    registered = {a.name for a in await AgentRegistry(services.database.sessionmaker).agents()}
    agents = sorted(registered | set(services.catalog.agents()))
    depth = GaugeMetricFamily(
        "kommandant_queue_depth",
        "Calls waiting in an agent's queue, not yet taken by a worker.",
        labels=["agent"],
    )
    for agent, waiting in (await services.bus.queue_depths(agents)).items():
        depth.add_metric([agent], float(waiting))
    letters = Counter(letter.agent or "unknown" for letter in await services.bus.dead_letters(DLQ_SCAN))
    dead = GaugeMetricFamily(
        "kommandant_dead_letters",
        f"Calls in the dead-letter queue by the agent they were for (the first {DLQ_SCAN:,} read).",
        labels=["agent"],
    )
    for agent in sorted(set(agents) | set(letters)):
        dead.add_metric([agent], float(letters.get(agent, 0)))
    return [depth, dead]


def _refusal(request: Request, settings: Settings) -> Response | None:
    """None when this request may read the metrics, else the answer that refuses it."""
    token = settings.metrics_token
    if token is not None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        expected = token.get_secret_value().encode()
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected):
            return None
        return PlainTextResponse(UNAUTHORIZED, status_code=401, headers={"WWW-Authenticate": "Bearer"})
    client = request.client.host if request.client is not None else ""
    return None if client in LOOPBACK else PlainTextResponse(NOT_LOCAL, status_code=403)


def metrics_endpoint(
    settings: Settings, services: Callable[[], Services | None]
) -> Callable[[Request], Awaitable[Response]]:
    """The ``/metrics`` route: refuse or render (``services`` gives the running services, or None)."""

    async def endpoint(request: Request) -> Response:
        refused = _refusal(request, settings)
        if refused is not None:
            return refused
        openmetrics = OPENMETRICS in request.headers.get("accept", "")
        body = await render(services(), openmetrics=openmetrics)
        return Response(body, media_type=OPENMETRICS_TYPE if openmetrics else CONTENT_TYPE)

    return endpoint


def mount_metrics(app: FastAPI, settings: Settings, runtime: Callable[[], Runtime]) -> None:
    """Add ``/metrics`` to the web server (its middleware checks Host and Origin first)."""

    def services() -> Services | None:
        try:
            return runtime().services
        except RuntimeError:  # still starting: the counters answer, the gauges are marked down
            return None

    app.add_route(
        METRICS_PATH, metrics_endpoint(settings, services), methods=["GET"], include_in_schema=False
    )


def metrics_app(settings: Settings, services: Callable[[], Services | None]) -> Starlette:
    """A small app serving ``/metrics`` alone, behind the same Host and Origin check as the web server."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.routing import Route

    from assistant.web.hosts import HostCheckMiddleware, HostPolicy

    return Starlette(
        routes=[Route(METRICS_PATH, metrics_endpoint(settings, services), methods=["GET"])],
        middleware=[Middleware(HostCheckMiddleware, policy=HostPolicy.for_web(settings))],
    )


@asynccontextmanager
async def serve_metrics(settings: Settings, services: Services) -> AsyncIterator[int | None]:
    """While the block runs, serve ``/metrics`` on ``KOMMANDANT_METRICS_PORT`` at ``KOMMANDANT_HOST``
    (yields the port; None, and nothing served, when no port is set or it cannot be bound)."""
    if settings.metrics_port is None:
        yield None
        return
    import uvicorn

    class Server(uvicorn.Server):
        @contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # SIGINT and SIGTERM belong to the worker, which drains its calls on them

    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.metrics_port))  # here: uvicorn would exit the process instead
    except OSError as err:
        sock.close()
        # the agents matter more than their metrics: serve them, and say loudly why there are none
        log.error(
            "cannot serve /metrics on %s:%s (%s); running without", settings.host, settings.metrics_port, err
        )
        yield None
        return
    config = uvicorn.Config(
        metrics_app(settings, lambda: services), log_config=None, access_log=False, lifespan="off"
    )
    server = Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="metrics-server")
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await task
        sock.close()
