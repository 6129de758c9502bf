"""``create_app(settings)``: the whole License Central ASGI application."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from datetime import timedelta
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from licentia import __version__
from licentia.domain.errors import ConfigurationError
from licentia.server.api import openapi, problems
from licentia.server.api.bodies import JSON_BODY, BodyLimits
from licentia.server.api.context import Services
from licentia.server.api.credentials import CredentialCache
from licentia.server.api.headers import TransportSecurity
from licentia.server.api.hot import HotCalls, LicentiaApp
from licentia.server.api.limiting import RequestLimits
from licentia.server.api.metrics import Exposition
from licentia.server.api.routes import (
    assignments,
    audit,
    catalog,
    cloud,
    cloud_admin,
    cloud_devices,
    devices,
    erp,
    health,
    keys,
    licenses,
    metrics,
    orders,
    push,
    sessions,
    shops,
    subscriptions,
    webhooks,
)
from licentia.server.api.threads import install_executor
from licentia.server.background import Resources, job_kinds, run_jobs_forever
from licentia.server.cloud.checkout import SeatTakes
from licentia.server.cloud.consumptions import Consumptions
from licentia.server.cloud.releases import Releases
from licentia.server.cloud.renewals import Renewals
from licentia.server.db.engine import Database, connect
from licentia.server.db.loop_statements import LoopStatements
from licentia.server.db.runner import Runner
from licentia.server.db.schema import schema_status
from licentia.server.db.statistics import REFRESH_SECONDS, refresh_statistics
from licentia.server.jobs import Worker
from licentia.server.keys.master import MasterKey, load_master_key
from licentia.server.licenses.reads import LicenseReads
from licentia.server.mail import MailTemplates, mailer_for
from licentia.server.migrations import models as all_models
from licentia.server.observability.requests import RequestCounts
from licentia.server.push import changes as push_changes
from licentia.server.push.hub import PushHub
from licentia.server.rate_limits.limiter import Limiter
from licentia.server.rate_limits.lines import Lines
from licentia.server.rate_limits.tarpit import Tarpit
from licentia.server.settings import Settings
from licentia.server.tenancy.passwords import PasswordChecks
from licentia.server.web import install as install_web_fronts
from licentia.server.webhooks import outbox
from licentia.server.webhooks.delivery import Deliverer
from licentia.server.webhooks.egress import delivery_client
from licentia.server.webhooks.notices import DisabledNotices

# Every table must be mapped before the first flush: foreign keys span contexts.
assert all_models.Base.metadata.tables
API = "/api/v1"
log = logging.getLogger("licentia.server")


def create_app(
    settings: Settings,
    *,
    database: Database | None = None,
    master: MasterKey | None = None,
    check_schema: bool = True,
) -> FastAPI:
    """Build the app. Raises ConfigurationError for an unsafe master key or a database
    that is not migrated to exactly this code's schema."""
    db = database or connect(settings.database_url, pool_size=settings.database_pool_size)
    if check_schema:
        message = schema_status(db.write_engine, settings.database_url).problem()
        if message is not None:
            raise ConfigurationError(message, code="DATABASE_NOT_MIGRATED")
    master = master or load_master_key(settings)
    runner = Runner(db, LoopStatements(db.write_engine, size=settings.database_pool_size))
    services = Services(
        settings,
        db,
        master,
        CredentialCache(settings.credential_cache_seconds),
        runner,
        Renewals(runner, master),
        Consumptions(runner),
        Releases(runner),
        SeatTakes(runner, master),
        LicenseReads(runner),
        PasswordChecks(settings.password_checks),
        PushHub(max_streams=settings.push_stream_cap, per_address=settings.push_streams_per_device),
    )

    @asynccontextmanager
    async def lifespan(started: FastAPI) -> AsyncIterator[None]:
        executor = install_executor(settings.threads)
        await runner.loop.open()
        jobs = asyncio.create_task(run_jobs_forever(started.state.jobs, settings.job_poll_seconds))
        # the app's own database only: a test's shared one may be inside a transaction
        statistics = None if database else asyncio.create_task(_refresh_statistics_forever(db))
        deliverer = asyncio.create_task(_deliver_forever(db, master, settings))
        stop_push = _start_push(services.push, db, settings)
        yield
        stop_push()
        jobs.cancel()
        deliverer.cancel()
        if statistics is not None:
            statistics.cancel()
        await runner.loop.close()
        executor.shutdown(wait=False)
        if database is None:
            db.dispose()

    app = LicentiaApp(
        title="Licentia License Central",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        max_body_size=JSON_BODY,  # routes that take more say so (api/bodies.py)
        description="Create and manage software licenses. Errors are RFC 9457 problem+json "
        "with a stable `code`; lists are cursor-paginated.",
    )
    app.state.services = services
    app.transport_security = TransportSecurity(
        settings.hsts_seconds, settings.public_url.startswith("https:")
    )
    problems.install(app)
    # A request is matched against the routers in this order, one route after the
    # other: the calls that come most often (devices and cloud clients, then the
    # vendor's reads and orders) are tried first. No two routes share a path.
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(devices.device_router, prefix=API)
    app.include_router(cloud_devices.router, prefix=API)
    app.include_router(push.router, prefix=API)
    for module in (
        licenses,
        subscriptions,
        assignments,
        orders,
        erp,
        sessions,
        catalog,
        devices,
        cloud,
        keys,
        audit,
        webhooks,
        shops,
    ):
        app.include_router(module.router, prefix=API)
    app.include_router(keys.public_router, prefix=API)
    app.include_router(shops.event_router, prefix=API)
    app.include_router(cloud_admin.router, prefix=API)
    app.hot_calls = HotCalls.of_routes(app.routes)  # the routes marked @hot
    openapi.install(app)
    install_web_fronts(app, settings)
    app.body_limits = BodyLimits.of_routes(app.routes, JSON_BODY)
    app.state.jobs = _worker(app, settings, db, master)
    app.state.metrics = Exposition(db, kinds=app.state.jobs.registry.names)
    _mount_docs(app)
    # every route is in place: their full templates label the request counts
    app.request_counts = RequestCounts.of_routes(app.routes) if settings.count_requests else None
    limiter = Limiter.of(settings)
    if limiter is not None:  # every route is in place: the families are read from them
        app.request_limits = RequestLimits.of_routes(
            limiter, app.routes, Tarpit.of(settings), Lines.of(settings)
        )
    return app


def _start_push(hub: PushHub, db: Database, settings: Settings) -> Callable[[], None]:
    """Tell ``hub`` this process's commits and, on PostgreSQL, the other nodes'
    (``server/push``); returns what ends it at shutdown."""
    hub.bind(asyncio.get_running_loop())
    forget = push_changes.on_commit(db.write_engine, hub.publish)
    listener = None
    if db.write_engine.dialect.name == "postgresql" and settings.push_stream_cap > 0:
        from licentia.server.push.postgres import listen_forever

        listener = asyncio.create_task(listen_forever(settings.database_url, hub))

    def stop() -> None:
        forget()
        hub.close_all()
        if listener is not None:
            listener.cancel()

    return stop


def _worker(app: FastAPI, settings: Settings, db: Database, master: MasterKey) -> Worker:
    """The durable jobs' worker of this process (licentia.server.background), also
    run at once by pages that send a mail while someone waits."""
    resources = Resources(settings, db, master, lambda: app.state.mailer, app.state.mail_templates)
    lease = timedelta(seconds=settings.job_lease_seconds)
    return Worker(db, job_kinds(resources), lease=lease)


async def _refresh_statistics_forever(db: Database) -> None:
    """SQLite's planner statistics at start, then every ``REFRESH_SECONDS``."""
    while True:
        try:
            if not await run_in_threadpool(refresh_statistics, db):
                return
        except Exception:  # stale statistics make queries slower, not wrong
            log.exception("refreshing the query planner's statistics failed")
        await asyncio.sleep(REFRESH_SECONDS)


async def _deliver_forever(db: Database, master: MasterKey, settings: Settings) -> None:
    """Deliver the webhook outbox (licentia.server.webhooks.delivery): a round as soon
    as this process commits an event (``outbox.on_commit``) or, on PostgreSQL, another
    node does (``wakeups``), and at the latest ``webhook_poll_seconds`` after the last
    round, which finds the retries that came due. On several nodes at once, each
    claims other deliveries."""
    every = settings.webhook_poll_seconds
    if every <= 0:
        return
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()

    def waken() -> None:  # on the committing thread
        if not wake.is_set():  # a round is due already: no need to tell the loop again
            with suppress(RuntimeError):  # the loop has closed: the server is stopping
                loop.call_soon_threadsafe(wake.set)

    forget = outbox.on_commit(db.write_engine, waken)
    listener = None
    if db.write_engine.dialect.name == "postgresql":  # other nodes' events, by NOTIFY
        from licentia.server.webhooks.wakeups import listen_forever

        listener = asyncio.create_task(listen_forever(settings.database_url, waken))
    http = delivery_client(settings.webhook_targets, timeout=settings.webhook_timeout_seconds)
    notices = DisabledNotices(
        db, mailer_for(settings), MailTemplates(settings.mail_templates_dir), settings.public_url
    )
    with http:
        lease = timedelta(seconds=settings.webhook_lease_seconds)
        deliverer = Deliverer(db, master, http, lease=lease, on_disabled=notices)
        try:
            while True:
                wake.clear()  # an event committed during the round makes another one
                try:
                    await run_in_threadpool(deliverer.deliver_due)
                except Exception:  # a failed round must not stop the next one
                    log.exception("webhook delivery failed")
                with suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), every)
        finally:
            forget()
            if listener is not None:
                listener.cancel()
            deliverer.close()


# Swagger UI 5 as fastapi-offline packages it (its static files, not its app class):
# the UI reads OpenAPI 3.1, which the 4.x of swagger-ui-bundle could not.
SWAGGER_UI = Path(fastapi_offline.__file__).parent / "static"


def _mount_docs(app: FastAPI) -> None:
    """Interactive docs from the packaged Swagger UI: no CDN."""
    app.mount("/static/swagger", StaticFiles(directory=SWAGGER_UI), name="swagger")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Licentia API",
            swagger_js_url="/static/swagger/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger/swagger-ui.css",
            swagger_favicon_url="/static/swagger/favicon.png",
        )
