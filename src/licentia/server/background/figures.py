"""Depth and lag of every queue, per kind of work, for ``/metrics``: the job table's
kinds, and the webhook deliveries (a queue of their own, see docs/architecture.md)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from licentia.server.db.base import utcnow
from licentia.server.db.engine import Database, run_read
from licentia.server.jobs import KindFigures
from licentia.server.jobs import queue_figures as job_figures
from licentia.server.jobs.stats import lag_seconds
from licentia.server.webhooks.models import WebhookDelivery

WEBHOOK_DELIVERY = "webhooks.delivery"


def queue_figures(db: Database, now: datetime | None = None) -> list[KindFigures]:
    """Each kind's ``depth`` (pending), ``due``, ``lag_seconds`` (how long the oldest
    due one has waited) and ``failed``, read in one read session."""
    at = now or utcnow()
    return run_read(db, lambda s: [*job_figures(s, at), *_deliveries(s, at)])


def _deliveries(session: Session, now: datetime) -> list[KindFigures]:
    is_due = (WebhookDelivery.status == "pending") & (WebhookDelivery.next_attempt_at <= now)
    depth, due, oldest, failed = session.execute(
        select(
            func.count().filter(WebhookDelivery.status == "pending"),
            func.count().filter(is_due),
            func.min(case((is_due, WebhookDelivery.next_attempt_at))),
            func.count().filter(WebhookDelivery.status == "failed"),
        ).where(WebhookDelivery.status.in_(("pending", "failed")))
    ).one()
    if not depth and not failed:
        return []
    return [KindFigures(WEBHOOK_DELIVERY, depth, due, lag_seconds(now, oldest), failed)]
