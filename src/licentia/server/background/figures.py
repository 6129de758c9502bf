"""Depth and lag of every queue, per kind of work, for ``/metrics``: the job table's
kinds, and the webhook deliveries (a queue of their own, see docs/architecture.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, case, func, literal, select, union_all

from licentia.server.db.base import utcnow
from licentia.server.db.engine import Database, run_read
from licentia.server.jobs import KindFigures
from licentia.server.jobs.stats import figures_of, figures_query
from licentia.server.webhooks.models import WebhookDelivery

WEBHOOK_DELIVERY = "webhooks.delivery"


def queue_figures(db: Database, now: datetime | None = None) -> list[KindFigures]:
    """Each kind's ``depth`` (pending), ``due``, ``lag_seconds`` (how long the oldest
    due one has waited) and ``failed``, for every kind with pending or failed work,
    by kind name. One statement: the job table's grouped figures and the deliveries'
    joined by UNION ALL, so that a scrape costs the database one query."""
    at = now or utcnow()
    statement = union_all(figures_query(at), _deliveries(at))
    rows = run_read(db, lambda session: session.execute(statement).all())
    figures = [f for f in figures_of(rows, at) if f.depth or f.failed]
    return sorted(figures, key=lambda figure: figure.kind)


def _deliveries(now: datetime) -> Select[str, int, int, Any, int]:
    is_due = (WebhookDelivery.status == "pending") & (WebhookDelivery.next_attempt_at <= now)
    return select(
        literal(WEBHOOK_DELIVERY).label("kind"),
        func.count().filter(WebhookDelivery.status == "pending"),
        func.count().filter(is_due),
        func.min(case((is_due, WebhookDelivery.next_attempt_at))),
        func.count().filter(WebhookDelivery.status == "failed"),
    ).where(WebhookDelivery.status.in_(("pending", "failed")))
