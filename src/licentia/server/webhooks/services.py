"""A vendor's webhook endpoints, their secrets, and the delivery log.

Secrets are kept under the master key and shown once: when the endpoint is made and
when its secret is rotated. After a rotation both secrets sign every delivery until
the overlap ends, so a receiver can switch to the new one at its own pace.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, delete, exists, select
from sqlalchemy.orm import Session, aliased

from licentia.domain.actors import Actor
from licentia.domain.errors import NotFoundError, ValidationError
from licentia.domain.webhook_targets import TargetPolicy
from licentia.domain.webhooks import new_secret, unknown_event_types
from licentia.server.audit.services import record
from licentia.server.db.base import utcnow
from licentia.server.keys.master import MasterKey
from licentia.server.webhooks.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)

SECRET_PURPOSE = "webhook-secret"  # noqa: S105 - a key derivation label
MAX_OVERLAP = timedelta(days=7)


@dataclass(frozen=True)
class IssuedSecret:
    """An endpoint and its new secret, in clear this once."""

    endpoint: WebhookEndpoint
    secret: str


def create_endpoint(
    session: Session,
    actor: Actor,
    master: MasterKey,
    *,
    url: str,
    event_types: list[str],
    targets: TargetPolicy,
    description: str = "",
) -> IssuedSecret:
    """Register an endpoint of the actor's vendor. Raises ValidationError:
    ``UNKNOWN_EVENT_TYPE`` for a filter naming an event outside the catalogue,
    ``WEBHOOK_URL_FORBIDDEN`` for a URL ``targets`` does not allow."""
    _check_filter(event_types)
    targets.check_url(url)
    secret = new_secret()
    endpoint = WebhookEndpoint(
        vendor_id=_vendor(actor),
        url=url,
        description=description,
        event_types=list(dict.fromkeys(event_types)),
        enabled=True,
        secret=master.encrypt(secret.encode(), purpose=SECRET_PURPOSE),
    )
    session.add(endpoint)
    session.flush()
    record(
        session,
        actor,
        "webhook_endpoint.created",
        "webhook_endpoint",
        endpoint.id,
        after=endpoint_view(endpoint),
    )
    return IssuedSecret(endpoint, secret)


def update_endpoint(
    session: Session,
    actor: Actor,
    endpoint_id: str,
    changes: dict[str, Any],
    *,
    targets: TargetPolicy,
) -> WebhookEndpoint:
    """Change ``url``, ``description``, ``event_types`` or ``enabled``. Enabling an
    endpoint that was disabled resumes its pending deliveries, oldest first. Raises
    ValidationError as :func:`create_endpoint` does."""
    endpoint = get_endpoint(session, actor, endpoint_id)
    if changes.get("url") is not None:
        targets.check_url(changes["url"])
    before = endpoint_view(endpoint)
    if changes.get("event_types") is not None:
        _check_filter(changes["event_types"])
        endpoint.event_types = list(dict.fromkeys(changes["event_types"]))
    for name in ("url", "description"):
        if changes.get(name) is not None:
            setattr(endpoint, name, changes[name])
    if changes.get("enabled") is not None:
        endpoint.enabled = changes["enabled"]
        endpoint.disabled_reason = None if endpoint.enabled else "vendor"
    endpoint.updated_at = utcnow()
    session.flush()
    record(
        session,
        actor,
        "webhook_endpoint.updated",
        "webhook_endpoint",
        endpoint.id,
        before=before,
        after=endpoint_view(endpoint),
    )
    return endpoint


def rotate_secret(
    session: Session, actor: Actor, master: MasterKey, endpoint_id: str, *, overlap: timedelta
) -> IssuedSecret:
    """Give the endpoint a new secret; the current one keeps signing for ``overlap``
    (at most MAX_OVERLAP; zero: it stops at once). Raises ValidationError for an
    overlap outside that range."""
    if overlap < timedelta(0) or overlap > MAX_OVERLAP:
        raise ValidationError("the overlap lies between 0 and 7 days", field="overlap_seconds")
    endpoint = get_endpoint(session, actor, endpoint_id, lock=True)
    secret = new_secret()
    now = utcnow()
    endpoint.previous_secret = endpoint.secret if overlap else None
    endpoint.previous_secret_until = now + overlap if overlap else None
    endpoint.secret = master.encrypt(secret.encode(), purpose=SECRET_PURPOSE)
    endpoint.updated_at = now
    record(
        session,
        actor,
        "webhook_endpoint.secret_rotated",
        "webhook_endpoint",
        endpoint.id,
        after={"previous_secret_until": _iso(endpoint.previous_secret_until)},
    )
    return IssuedSecret(endpoint, secret)


def delete_endpoint(session: Session, actor: Actor, endpoint_id: str) -> None:
    """Remove the endpoint with its deliveries and their log."""
    endpoint = get_endpoint(session, actor, endpoint_id)
    deliveries = select(WebhookDelivery.id).where(WebhookDelivery.endpoint_id == endpoint.id)
    session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(deliveries)))
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))
    record(
        session,
        actor,
        "webhook_endpoint.deleted",
        "webhook_endpoint",
        endpoint.id,
        before=endpoint_view(endpoint),
    )
    session.delete(endpoint)


def get_endpoint(
    session: Session, actor: Actor, endpoint_id: str, *, lock: bool = False
) -> WebhookEndpoint:
    """Raises NotFoundError unless the endpoint is the actor's vendor's."""
    query = select(WebhookEndpoint).where(
        WebhookEndpoint.id == endpoint_id, WebhookEndpoint.vendor_id == _vendor(actor)
    )
    endpoint = session.scalars(query.with_for_update() if lock else query).one_or_none()
    if endpoint is None:
        raise NotFoundError("webhook endpoint", endpoint_id)
    return endpoint


def endpoints_query(actor: Actor) -> Select[WebhookEndpoint]:
    return select(WebhookEndpoint).where(WebhookEndpoint.vendor_id == _vendor(actor))


def endpoint_view(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """The endpoint as the audit log shows it: never its secrets."""
    return {
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": list(endpoint.event_types),
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
    }


# --- the delivery log ------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryView:
    delivery: WebhookDelivery
    event: WebhookEvent
    attempts: list[WebhookAttempt]


def deliveries_query(actor: Actor, endpoint_id: str) -> Select[WebhookDelivery]:
    """An endpoint's deliveries (page them by id: oldest first)."""
    return select(WebhookDelivery).where(
        WebhookDelivery.vendor_id == _vendor(actor), WebhookDelivery.endpoint_id == endpoint_id
    )


def delivery_views(session: Session, deliveries: list[WebhookDelivery]) -> list[DeliveryView]:
    """Each delivery with its event and its attempts, oldest first."""
    if not deliveries:
        return []
    seqs = {d.event_seq for d in deliveries}
    events = {
        e.seq: e for e in session.scalars(select(WebhookEvent).where(WebhookEvent.seq.in_(seqs)))
    }
    attempts: dict[str, list[WebhookAttempt]] = {d.id: [] for d in deliveries}
    query = (
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id.in_(attempts))
        .order_by(WebhookAttempt.at, WebhookAttempt.id)
    )
    for attempt in session.scalars(query):
        attempts[attempt.delivery_id].append(attempt)
    return [DeliveryView(d, events[d.event_seq], attempts[d.id]) for d in deliveries]


def get_delivery(session: Session, actor: Actor, delivery_id: str) -> DeliveryView:
    delivery = session.scalars(
        select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.vendor_id == _vendor(actor)
        )
    ).one_or_none()
    if delivery is None:
        raise NotFoundError("webhook delivery", delivery_id)
    return delivery_views(session, [delivery])[0]


def replay_delivery(session: Session, actor: Actor, delivery_id: str) -> DeliveryView:
    """Send the delivery's event to its endpoint again, as a new delivery due now (the
    same ``webhook-id``: a receiver that keeps the ids it saw can tell a replay)."""
    original = get_delivery(session, actor, delivery_id).delivery
    now = utcnow()
    replay = WebhookDelivery(
        vendor_id=original.vendor_id,
        endpoint_id=original.endpoint_id,
        event_seq=original.event_seq,
        object_id=original.object_id,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(replay)
    session.flush()
    record(
        session,
        actor,
        "webhook_delivery.replayed",
        "webhook_delivery",
        replay.id,
        after={"replay_of": original.id},
    )
    return delivery_views(session, [replay])[0]


BULK_REPLAY_LIMIT = 1000  # events per call; ``more`` says when to call again


@dataclass(frozen=True)
class BulkReplay:
    replayed: int  # events sent again with this call
    more: bool  # failed events of the range are left: call again


def replay_failed(
    session: Session,
    actor: Actor,
    endpoint_id: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = BULK_REPLAY_LIMIT,
) -> BulkReplay:
    """Send again, as new deliveries due now, the events whose delivery to the endpoint
    failed and that happened in ``[since, until)``: the oldest ``limit`` of them.

    Idempotent: an event that has a delivery to the endpoint pending or delivered is
    left alone, so a second call (or one racing this one: the endpoint's row is locked)
    adds nothing until those replays fail again. Raises ValidationError when ``until``
    is not after ``since``."""
    if since is not None and until is not None and until <= since:
        raise ValidationError("until must be after since", field="until")
    endpoint = get_endpoint(session, actor, endpoint_id, lock=True)
    found = session.execute(_failed_events(endpoint.id, since, until).limit(limit + 1)).all()
    now = utcnow()
    replays = [
        WebhookDelivery(
            vendor_id=endpoint.vendor_id,
            endpoint_id=endpoint.id,
            event_seq=seq,
            object_id=object_id,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        for seq, object_id in found[:limit]
    ]
    session.add_all(replays)
    session.flush()
    record(
        session,
        actor,
        "webhook_endpoint.failed_replayed",
        "webhook_endpoint",
        endpoint.id,
        after={"events": len(replays), "since": _iso(since), "until": _iso(until)},
    )
    return BulkReplay(len(replays), more=len(found) > limit)


_other = aliased(WebhookDelivery)


def _failed_events(
    endpoint_id: str, since: datetime | None, until: datetime | None
) -> Select[int, str | None]:
    """The events (seq, object) failed to the endpoint and not pending or delivered
    to it since, oldest first."""
    settled = exists().where(
        _other.endpoint_id == endpoint_id,
        _other.event_seq == WebhookDelivery.event_seq,
        _other.status.in_(("pending", "delivered")),
    )
    query = (
        select(WebhookDelivery.event_seq, WebhookDelivery.object_id)
        .join(WebhookEvent, WebhookEvent.seq == WebhookDelivery.event_seq)
        .where(
            WebhookDelivery.endpoint_id == endpoint_id,
            WebhookDelivery.status == "failed",
            ~settled,
        )
        .group_by(WebhookDelivery.event_seq, WebhookDelivery.object_id)
        .order_by(WebhookDelivery.event_seq)
    )
    if since is not None:
        query = query.where(WebhookEvent.created_at >= since)
    if until is not None:
        query = query.where(WebhookEvent.created_at < until)
    return query


def _check_filter(event_types: list[str]) -> None:
    if not event_types:
        raise ValidationError("name at least one event type, or '*'", field="event_types")
    unknown = unknown_event_types(event_types)
    if unknown:
        raise ValidationError(
            f"no such event type: {', '.join(unknown)}",
            field="event_types",
            code="UNKNOWN_EVENT_TYPE",
        )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _vendor(actor: Actor) -> str:
    assert actor.vendor_id is not None, "webhook calls need a vendor-scoped actor"
    return actor.vendor_id
