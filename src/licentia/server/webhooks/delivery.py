"""Delivering the outbox: the durable job behind every webhook.

One round (``deliver_due``) has three steps, each its own transaction:

1. **Fan out**: events not yet dispatched become one delivery per endpoint of their
   vendor whose filter matches. Workers take this step one at a time (a plain
   ``FOR UPDATE`` on the events), so the deliveries of one object are made in the
   order of its events.
2. **Claim**: up to ``CLAIM_BATCH`` due deliveries are leased to this worker in one
   statement (``FOR UPDATE SKIP LOCKED`` on PostgreSQL: workers of several nodes claim
   different rows and never wait for each other). A delivery waits while an earlier
   one for the same object and endpoint is still pending, so a claim holds at most
   one delivery of an object per endpoint, and a receiver sees an object's events in
   order, even after failures.
3. **Send and record**: the claimed deliveries are POSTed at once, up to ``senders``
   at a time over kept-alive connections, each signed per Standard Webhooks. Since a
   claim holds one delivery per object and endpoint, sending them together never
   puts an object's later event before its earlier one; events of different objects
   may arrive in any order. The outcomes are recorded together: the delivered ones
   in a statement per answer status, each failure on its own (it is due again after
   ``retry_delay``; when it has failed for good its endpoint is disabled and the
   vendor mailed: ``notices``).

SQLite has no row locks to skip: there the single server process runs the job.
A worker that dies holding a lease leaves its deliveries pending; they are claimed
again when the lease ends, and sent again (at least once; receivers deduplicate by
``webhook-id``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

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
from licentia.server.webhooks.egress import DeliveryClient, SendError
from licentia.server.webhooks.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from licentia.server.webhooks.services import SECRET_PURPOSE

FAN_OUT_BATCH = 500
CLAIM_BATCH = 100
SENDERS = 16  # requests in flight at once per worker
EXCERPT = 500  # characters of a receiver's answer kept in the log
USER_AGENT = b"Licentia-Webhooks/1"
_UNSYNCED = {"synchronize_session": False}  # bulk statements: no ORM objects to update


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
    can move past a retry's delay instead of waiting for it. ``http`` is shared by the
    ``senders`` threads."""

    db: Database
    master: MasterKey
    http: DeliveryClient
    lease: timedelta = timedelta(minutes=5)
    clock: Callable[[], datetime] = utcnow
    # Called with the failed delivery's id, after the commit, when it disabled its
    # endpoint (``notices.DisabledNotices`` mails the vendor).
    on_disabled: Callable[[str], None] | None = None
    senders: int = SENDERS
    _pool: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)

    def deliver_due(self) -> int:
        """One round; returns how many deliveries were attempted."""
        run_write(self.db, lambda s: fan_out(s))
        attempted = 0
        while True:
            claimed = self._claim(new_id())
            if not claimed:
                return attempted
            self._record(list(zip(claimed, self._send_all(claimed), strict=True)))
            attempted += len(claimed)

    def close(self) -> None:
        """Stop the sending threads (they are started with the first claim)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _claim(self, token: str) -> list[Claimed]:
        return run_write(self.db, lambda s: claim(s, token, self.clock(), self.lease))

    def _send_all(self, claimed: list[Claimed]) -> list[Outcome]:
        """Every claimed delivery, ``senders`` at a time; the outcomes in claim order.
        Always on the sending threads (with more than one): each keeps its connections
        (``DeliveryClient``), so no other thread opens any."""
        signers = self._signers(claimed)
        if self.senders <= 1:
            return [self.send(item, signers) for item in claimed]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.senders, thread_name_prefix="webhooks")
        return list(self._pool.map(lambda item: self.send(item, signers), claimed))

    def _signers(self, claimed: list[Claimed]) -> dict[bytes, Webhook]:
        """A signer per secret of the claim, decrypted once for all its deliveries."""
        blobs = {secret for item in claimed for secret in item.secrets}
        return {
            blob: Webhook(self.master.decrypt(blob, purpose=SECRET_PURPOSE).decode())
            for blob in blobs
        }

    def _record(self, outcomes: list[tuple[Claimed, Outcome]]) -> None:
        """The outcomes of one claim, in one transaction (a transaction per attempt
        would cost more than the HTTP calls on a fast receiver)."""
        now = self.clock()
        disabled = run_write(self.db, lambda s: record_outcomes(s, outcomes, now))
        if self.on_disabled is not None:
            for delivery_id in disabled:
                self.on_disabled(delivery_id)

    def send(self, item: Claimed, signers: dict[bytes, Webhook] | None = None) -> Outcome:
        """POST the event, signed with every secret that signs now. The timestamp is
        the real time: receivers refuse one far from their own clock."""
        now = utcnow()
        signers = signers if signers is not None else self._signers([item])
        signature = " ".join(
            signers[secret].sign(item.event_id, now, item.body) for secret in item.secrets
        )
        headers = [
            (b"content-type", b"application/json"),
            (b"user-agent", USER_AGENT),
            (b"webhook-id", item.event_id.encode()),
            (b"webhook-timestamp", str(int(now.timestamp())).encode()),
            (b"webhook-signature", signature.encode()),
        ]
        try:
            answer = self.http.post(item.url, item.body.encode(), headers)
        except SendError as error:
            return Outcome(None, f"{error.kind}: {error}"[:200], "")
        return Outcome(answer.status_code, None, answer.text[:EXCERPT])


def fan_out(session: Session) -> int:
    """Make the deliveries of undispatched events; returns how many events it took."""
    events = session.execute(
        select(
            WebhookEvent.seq,
            WebhookEvent.vendor_id,
            WebhookEvent.type,
            WebhookEvent.object_id,
            WebhookEvent.created_at,
        )
        .where(WebhookEvent.dispatched.is_(False))
        .order_by(WebhookEvent.seq)
        .limit(FAN_OUT_BATCH)
        .with_for_update()
    ).all()
    if not events:
        return 0
    endpoints = session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.vendor_id, WebhookEndpoint.event_types).where(
            WebhookEndpoint.vendor_id.in_({e.vendor_id for e in events})
        )
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
        .values(dispatched=True),
        execution_options=_UNSYNCED,
    )
    return len(events)


_earlier = aliased(WebhookDelivery)


def claim(
    session: Session, token: str, now: datetime, lease: timedelta, *, limit: int = CLAIM_BATCH
) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries to ``token`` until ``now + lease``: the
    oldest events first, at most one per object and endpoint (the earliest pending)."""
    waiting_for_earlier = exists().where(
        _earlier.endpoint_id == WebhookDelivery.endpoint_id,
        _earlier.object_id == WebhookDelivery.object_id,
        _earlier.status == "pending",
        _earlier.event_seq < WebhookDelivery.event_seq,
    )
    due = session.execute(
        select(
            WebhookDelivery.id,
            WebhookEndpoint.url,
            WebhookEndpoint.secret,
            WebhookEndpoint.previous_secret,
            WebhookEndpoint.previous_secret_until,
            WebhookEvent.id.label("event_id"),
            WebhookEvent.payload,
        )
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .join(WebhookEvent, WebhookEvent.seq == WebhookDelivery.event_seq)
        .where(
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at <= now,
            (WebhookDelivery.claimed_until.is_(None)) | (WebhookDelivery.claimed_until < now),
            WebhookEndpoint.enabled.is_(True),
            ~waiting_for_earlier,
        )
        .order_by(WebhookDelivery.event_seq, WebhookDelivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=WebhookDelivery)
    ).all()
    if not due:
        return []
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_([row.id for row in due]))
        .values(claimed_by=token, claimed_until=now + lease),
        execution_options=_UNSYNCED,
    )
    return [_claimed(row, token, now) for row in due]


def _claimed(row: Any, token: str, now: datetime) -> Claimed:
    secrets = [row.secret]
    until = row.previous_secret_until
    if row.previous_secret is not None and until is not None and until > now:
        secrets.append(row.previous_secret)
    body = json.dumps(row.payload, separators=(",", ":"), sort_keys=True)
    return Claimed(row.id, token, row.url, row.event_id, body, secrets)


def record_outcomes(
    session: Session, outcomes: Sequence[tuple[Claimed, Outcome]], now: datetime
) -> list[str]:
    """Log the attempts of a claim and settle its deliveries, those whose lease this
    worker still holds. Returns the deliveries whose failure disabled their endpoint."""
    delivered: defaultdict[tuple[str, int], list[tuple[Claimed, Outcome]]] = defaultdict(list)
    disabled = []
    for item, outcome in outcomes:
        if outcome.delivered and outcome.status_code is not None:
            delivered[item.token, outcome.status_code].append((item, outcome))
        elif record_outcome(session, item, outcome, now):
            disabled.append(item.delivery_id)
    for (token, status_code), settled in delivered.items():
        _record_delivered(session, token, status_code, settled, now)
    return disabled


def _record_delivered(
    session: Session,
    token: str,
    status_code: int,
    settled: list[tuple[Claimed, Outcome]],
    now: datetime,
) -> None:
    """Deliveries answered with one 2xx status: one UPDATE, one INSERT of attempts."""
    held = set(
        session.scalars(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id.in_([item.delivery_id for item, _ in settled]),
                WebhookDelivery.claimed_by == token,
            )
            .values(
                status="delivered",
                delivered_at=now,
                attempts=WebhookDelivery.attempts + 1,
                last_status_code=status_code,
                claimed_by=None,
                claimed_until=None,
            )
            .returning(WebhookDelivery.id),
            execution_options=_UNSYNCED,
        )
    )
    attempts = [
        {
            "id": new_id(),
            "delivery_id": item.delivery_id,
            "at": now,
            "status_code": status_code,
            "error": None,
            "response_excerpt": outcome.excerpt,
        }
        for item, outcome in settled
        if item.delivery_id in held
    ]
    if attempts:
        session.execute(insert(WebhookAttempt), attempts)
        tally(session, WEBHOOK_ATTEMPTS, "delivered", amount=len(attempts))


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
