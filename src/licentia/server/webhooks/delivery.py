"""Delivering the outbox: the durable job behind every webhook.

One round (``deliver_due``) has three steps, each its own transaction:

1. **Fan out**: events not yet dispatched become one delivery per endpoint of their
   vendor whose filter matches. Workers take this step one at a time (a plain
   ``FOR UPDATE`` on the events), so the deliveries of one object are made in the
   order of its events.
2. **Claim**: due deliveries are leased to this worker (``FOR UPDATE SKIP LOCKED`` on
   PostgreSQL: workers of several nodes claim different rows and never wait for each
   other). A delivery waits while an earlier one for the same object and endpoint is
   still pending, so a receiver sees an object's events in order even after failures.
3. **Send and record**: each claimed delivery is POSTed, signed per Standard
   Webhooks; the attempts of the claim go into the log together, and each delivery
   is done, or due again after ``retry_delay``; when it has failed for good its
   endpoint is disabled (and the vendor mailed: ``notices``).

SQLite has no row locks to skip: there the single server process runs the job.
A worker that dies holding a lease leaves its deliveries pending; they are claimed
again when the lease ends, and sent again (at least once; receivers deduplicate by
``webhook-id``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import and_, exists, insert, select, update
from sqlalchemy.orm import Session, aliased
from standardwebhooks import Webhook

from licentia.domain.ids import new_id
from licentia.domain.webhooks import matches, retry_delay
from licentia.server.db.base import utcnow
from licentia.server.db.engine import Database, run_write
from licentia.server.keys.master import MasterKey
from licentia.server.observability.metrics import WEBHOOK_ATTEMPTS, WEBHOOK_FAILED_DELIVERIES
from licentia.server.observability.tallies import tally
from licentia.server.webhooks.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from licentia.server.webhooks.services import SECRET_PURPOSE

FAN_OUT_BATCH = 500
CLAIM_BATCH = 20
EXCERPT = 500  # characters of a receiver's answer kept in the log
USER_AGENT = "Licentia-Webhooks/1"


@dataclass(frozen=True)
class Claimed:
    """A delivery leased to this worker, with what it needs to send it."""

    delivery_id: str
    token: str
    url: str
    event_id: str
    body: str
    secrets: list[bytes]  # encrypted; the current one first


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    excerpt: str

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass
class Deliverer:
    """Runs rounds of delivery for one process. ``clock`` is injectable so that a test
    can move past a retry's delay instead of waiting for it."""

    db: Database
    master: MasterKey
    http: httpx.Client
    lease: timedelta = timedelta(minutes=5)
    clock: Callable[[], datetime] = utcnow
    # Called with the failed delivery's id, after the commit, when it disabled its
    # endpoint (``notices.DisabledNotices`` mails the vendor).
    on_disabled: Callable[[str], None] | None = None

    def deliver_due(self) -> int:
        """One round; returns how many deliveries were attempted."""
        run_write(self.db, lambda s: fan_out(s))
        attempted = 0
        while True:
            claimed = self._claim(new_id())
            if not claimed:
                return attempted
            self._record([(item, self.send(item)) for item in claimed])
            attempted += len(claimed)

    def _claim(self, token: str) -> list[Claimed]:
        return run_write(self.db, lambda s: claim(s, token, self.clock(), self.lease))

    def _record(self, outcomes: list[tuple[Claimed, Outcome]]) -> None:
        """The outcomes of one claim, in one transaction (a transaction per attempt
        would cost more than the HTTP calls on a fast receiver)."""
        now = self.clock()
        disabled = run_write(
            self.db,
            lambda s: [i.delivery_id for i, o in outcomes if record_outcome(s, i, o, now)],
        )
        if self.on_disabled is not None:
            for delivery_id in disabled:
                self.on_disabled(delivery_id)

    def send(self, item: Claimed) -> Outcome:
        """POST the event, signed with every secret that signs now. The timestamp is
        the real time: receivers refuse one far from their own clock."""
        now = utcnow()
        signature = " ".join(
            Webhook(self.master.decrypt(secret, purpose=SECRET_PURPOSE).decode()).sign(
                item.event_id, now, item.body
            )
            for secret in item.secrets
        )
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": item.event_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature,
        }
        try:
            response = self.http.post(item.url, content=item.body.encode(), headers=headers)
        except httpx.HTTPError as error:
            return Outcome(None, f"{type(error).__name__}: {error}"[:200], "")
        return Outcome(response.status_code, None, response.text[:EXCERPT])


def fan_out(session: Session) -> int:
    """Make the deliveries of undispatched events; returns how many events it took."""
    events = session.scalars(
        select(WebhookEvent)
        .where(WebhookEvent.dispatched.is_(False))
        .order_by(WebhookEvent.seq)
        .limit(FAN_OUT_BATCH)
        .with_for_update()
    ).all()
    if not events:
        return 0
    vendors = {e.vendor_id for e in events}
    endpoints = session.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.vendor_id.in_(vendors))
    ).all()
    rows = [
        {
            "id": new_id(),
            "vendor_id": e.vendor_id,
            "endpoint_id": endpoint.id,
            "event_seq": e.seq,
            "object_id": e.object_id,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": e.created_at,
            "created_at": e.created_at,
        }
        for e in events
        for endpoint in endpoints
        if endpoint.vendor_id == e.vendor_id and matches(endpoint.event_types, e.type)
    ]
    if rows:
        session.execute(insert(WebhookDelivery), rows)
    session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.seq.in_([e.seq for e in events]))
        .values(dispatched=True)
    )
    return len(events)


_earlier = aliased(WebhookDelivery)


def claim(session: Session, token: str, now: datetime, lease: timedelta) -> list[Claimed]:
    """Lease up to CLAIM_BATCH due deliveries to ``token`` until ``now + lease``."""
    waiting_for_earlier = exists().where(
        _earlier.endpoint_id == WebhookDelivery.endpoint_id,
        _earlier.object_id == WebhookDelivery.object_id,
        _earlier.status == "pending",
        _earlier.event_seq < WebhookDelivery.event_seq,
    )
    due = session.scalars(
        select(WebhookDelivery)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at <= now,
            (WebhookDelivery.claimed_until.is_(None)) | (WebhookDelivery.claimed_until < now),
            WebhookEndpoint.enabled.is_(True),
            ~waiting_for_earlier,
        )
        .order_by(WebhookDelivery.event_seq, WebhookDelivery.id)
        .limit(CLAIM_BATCH)
        .with_for_update(skip_locked=True, of=WebhookDelivery)
    ).all()
    if not due:
        return []
    for delivery in due:
        delivery.claimed_by, delivery.claimed_until = token, now + lease
    return _claimed(session, due, token, now)


def _claimed(
    session: Session, due: Sequence[WebhookDelivery], token: str, now: datetime
) -> list[Claimed]:
    endpoint_ids = {d.endpoint_id for d in due}
    endpoints = {
        e.id: e
        for e in session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.id.in_(endpoint_ids))
        )
    }
    events = {
        e.seq: e
        for e in session.scalars(
            select(WebhookEvent).where(WebhookEvent.seq.in_({d.event_seq for d in due}))
        )
    }
    claimed = []
    for delivery in due:
        endpoint, event_ = endpoints[delivery.endpoint_id], events[delivery.event_seq]
        secrets = [endpoint.secret]
        until = endpoint.previous_secret_until
        if endpoint.previous_secret is not None and until is not None and until > now:
            secrets.append(endpoint.previous_secret)
        body = json.dumps(event_.payload, separators=(",", ":"), sort_keys=True)
        claimed.append(Claimed(delivery.id, token, endpoint.url, event_.id, body, secrets))
    return claimed


def record_outcome(session: Session, item: Claimed, outcome: Outcome, now: datetime) -> bool:
    """Log the attempt and settle the delivery, if this worker still holds its lease.
    Returns whether this failure disabled the endpoint (it was enabled until now)."""
    delivery = session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.id == item.delivery_id, WebhookDelivery.claimed_by == item.token)
        .with_for_update()
    ).one_or_none()
    if delivery is None:
        return False
    session.execute(
        insert(WebhookAttempt).values(
            id=new_id(),
            delivery_id=delivery.id,
            at=now,
            status_code=outcome.status_code,
            error=outcome.error,
            response_excerpt=outcome.excerpt,
        )
    )
    delivery.attempts += 1
    delivery.last_status_code = outcome.status_code
    delivery.claimed_by, delivery.claimed_until = None, None
    if outcome.delivered:
        delivery.status, delivery.delivered_at = "delivered", now
        tally(session, WEBHOOK_ATTEMPTS, "delivered")
        return False
    tally(session, WEBHOOK_ATTEMPTS, "failed")
    delay = retry_delay(delivery.attempts)
    if delay is not None:
        delivery.next_attempt_at = now + delay
        return False
    delivery.status = "failed"
    tally(session, WEBHOOK_FAILED_DELIVERIES)
    disabled = session.execute(
        update(WebhookEndpoint)
        .where(and_(WebhookEndpoint.id == delivery.endpoint_id, WebhookEndpoint.enabled.is_(True)))
        .values(enabled=False, disabled_reason="failing", updated_at=now)
    )
    return bool(getattr(disabled, "rowcount", 0))
