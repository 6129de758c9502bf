"""Automatic renewals survive SIGKILL: a server renewing hundreds of due subscriptions is
killed at random moments and comes back; in the end every subscription was renewed for
its period exactly once, and each renewal has exactly one ``subscription.renewed``
event in the outbox. The renewals are a periodic durable job (``subscriptions.renew``):
a round of renewals is committed with the job's end, so a kill loses all of it or none,
and the next process (or the next period's job) renews what is still due.

The events are delivered meanwhile to the vendor's webhook receiver (a real HTTP server
on loopback, verifying each signature), which takes its time over each request: after
the renewals' kills the server is killed ``LICENTIA_DELIVERY_KILLS`` more times (3)
while the receiver is answering a delivery. In the end the receiver has got every
event at least once (a delivery cut off by a kill is sent again after its lease, with
the same ``webhook-id``: the receiver counts it once) and every delivery is delivered.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select, update

from licentia.server.db.base import utcnow
from licentia.server.db.engine import Database, connect
from licentia.server.licenses.models import License
from licentia.server.subscriptions.models import SubscriptionRenewal
from licentia.server.webhooks.models import WebhookDelivery, WebhookEvent
from tests.e2e.harness import respawn
from tests.e2e.harness.cluster import Environment, migrate
from tests.support.servers import new_environment, running_server
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("crash-safety")]

LICENSES = 900  # five rounds of the renewal job (200 a round)
KILLS = int(os.environ.get("LICENTIA_RENEWAL_KILLS", "6"))
DELIVERY_KILLS = int(os.environ.get("LICENTIA_DELIVERY_KILLS", "3"))
RECEIVER_DELAY = 0.02  # seconds the receiver takes over each delivery
SEED = int(os.environ.get("LICENTIA_CRASH_SEED", str(int(time.time()))))
PERIOD_DAYS = 30


@pytest.fixture(scope="module")
def env(backend: str, database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Environment:
    # set up without renewals; the respawning server's job renews every 50 ms
    env = new_environment(
        database_url,
        tmp_path_factory.mktemp(f"renewals-{backend}"),
        {
            "LICENTIA_SUBSCRIPTION_RENEW_SECONDS": "0",
            "LICENTIA_DATABASE_POOL_SIZE": "4",
            # the receiver listens on loopback, by plain http (docs/security.md)
            "LICENTIA_WEBHOOK_ALLOW_HTTP": "true",
            "LICENTIA_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
        },
    )
    migrate(env)
    return env


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(delay=RECEIVER_DELAY).start()
    yield receiver
    receiver.stop()


@pytest.fixture
def db(env: Environment) -> Iterator[Database]:
    database = connect(env.database_url, pool_size=2)
    yield database
    database.dispose()


def _subscriptions(env: Environment, receiver: WebhookReceiver) -> str:
    """A new vendor with LICENSES automatic subscriptions of 30 days, and ``receiver``
    as its webhook endpoint for ``subscription.renewed``; the vendor's id."""
    slug = f"renew-{random.Random(SEED).getrandbits(32):08x}"
    vendor = env.cli("admin", "vendor", "create", slug, "--name", slug)
    key = str(env.cli("admin", "api-key", "create", "--vendor", slug, "--name", "erp")["key"])
    with running_server(env) as server:

        def admin(path: str, body: dict[str, object]) -> dict[str, object]:
            answer = httpx.post(
                f"{server.url}/api/v1{path}",
                json=body,
                headers={"Authorization": f"Bearer {key}"},
                timeout=120,
            )
            assert answer.status_code < 300, answer.text
            return dict(answer.json())

        product = admin("/products", {"code": "SUB", "name": "Sub", "features": []})
        subscription = {"period": "days", "days": PERIOD_DAYS, "automatic": True}
        options = {"subscription": subscription}
        body = {"sku": "SUB-30", "name": "30 days", "product_id": product["id"], "options": options}
        admin("/templates", body)
        admin(
            "/orders",
            {"external_order_id": "SUBS", "lines": [{"sku": "SUB-30", "quantity": LICENSES}]},
        )
        hooks: dict[str, object] = {"url": receiver.url, "event_types": ["subscription.renewed"]}
        receiver.secrets.append(str(admin("/webhook-endpoints", hooks)["secret"]))
    return str(vendor["id"])


def _make_due(db: Database, vendor_id: str) -> None:
    """Move every renewal of the vendor into the past, as if the server had been down."""
    with db.transaction() as session:
        session.execute(
            update(License)
            .where(License.vendor_id == vendor_id)
            .values(renews_at=utcnow() - timedelta(minutes=1))
        )


def _paid(db: Database, vendor_id: str) -> dict[str, datetime]:
    """Each license's end of the paid period."""
    with db.read() as session:
        rows = session.execute(
            select(License.id, License.paid_until).where(License.vendor_id == vendor_id)
        ).all()
    return {key: paid for key, paid in rows if paid is not None}


def _still_due(db: Database, vendor_id: str) -> int:
    with db.read() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(License)
                .where(License.vendor_id == vendor_id, License.renews_at <= utcnow())
            )
            or 0
        )


def _renewed_events(db: Database, vendor_id: str) -> set[str]:
    with db.read() as session:
        return set(
            session.scalars(
                select(WebhookEvent.id).where(
                    WebhookEvent.vendor_id == vendor_id, WebhookEvent.type == "subscription.renewed"
                )
            )
        )


def _undelivered(db: Database, vendor_id: str) -> int:
    with db.read() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(WebhookDelivery)
                .where(
                    WebhookDelivery.vendor_id == vendor_id, WebhookDelivery.status != "delivered"
                )
            )
            or 0
        )


def _kill_while_delivering(
    server: respawn.RespawningServer, receiver: WebhookReceiver, rng: random.Random
) -> bool:
    """Kill the server while the receiver answers one of its deliveries (True), or
    anyway once none came for a while (False)."""
    time.sleep(rng.uniform(0.05, 0.5))
    deadline = time.monotonic() + 30
    while receiver.active == 0 and time.monotonic() < deadline:
        time.sleep(0.001)
    in_flight = receiver.active > 0
    server.kill()
    return in_flight


def test_every_due_subscription_is_renewed_once_across_sigkills(
    env: Environment, db: Database, receiver: WebhookReceiver
) -> None:
    vendor_id = _subscriptions(env, receiver)
    paid_before = _paid(db, vendor_id)
    assert len(paid_before) == LICENSES
    _make_due(db, vendor_id)

    renewing = replace(
        env,
        extra={
            **env.extra,
            "LICENTIA_SUBSCRIPTION_RENEW_SECONDS": "0.05",
            "LICENTIA_JOB_POLL_SECONDS": "0.05",
            "LICENTIA_JOB_LEASE_SECONDS": "2",  # a killed node's job is taken over soon
            "LICENTIA_WEBHOOK_POLL_SECONDS": "0.05",
            "LICENTIA_WEBHOOK_LEASE_SECONDS": "2",  # and its deliveries too
        },
    )
    server = respawn.start(renewing)
    rng = random.Random(SEED)
    try:
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.02, 0.4))
            server.kill()
        cut_off = [_kill_while_delivering(server, receiver, rng) for _ in range(DELIVERY_KILLS)]
        deadline = time.monotonic() + 120
        while _still_due(db, vendor_id) and time.monotonic() < deadline:
            time.sleep(0.1)
        event_ids = _renewed_events(db, vendor_id)
        deadline = time.monotonic() + 180
        while (receiver.ids() < event_ids or _undelivered(db, vendor_id)) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.2)
    finally:
        server.stop()
    again = len(receiver.received) - len(receiver.ids())
    print(
        f"\n{KILLS} + {DELIVERY_KILLS} kills (seed {SEED}), {sum(cut_off)} while a delivery was "
        f"in flight: {len(event_ids)} events, {len(receiver.received)} deliveries accepted, "
        f"{again} of them again under the same webhook-id"
    )

    with db.read() as session:
        renewals = session.execute(
            select(SubscriptionRenewal.license_id, func.count())
            .where(SubscriptionRenewal.vendor_id == vendor_id)
            .group_by(SubscriptionRenewal.license_id)
        ).all()
        events = session.scalar(
            select(func.count())
            .select_from(WebhookEvent)
            .where(WebhookEvent.vendor_id == vendor_id, WebhookEvent.type == "subscription.renewed")
        )
    assert _still_due(db, vendor_id) == 0, f"seed {SEED}"
    assert sorted(count for _, count in renewals) == [1] * LICENSES, f"seed {SEED}"
    assert events == LICENSES
    assert receiver.ids() == event_ids, f"seed {SEED}"  # none lost
    assert _undelivered(db, vendor_id) == 0, f"seed {SEED}"
    assert receiver.refused == 0
    if any(cut_off):  # a delivery cut off by its sender's death was sent again
        assert again > 0, f"seed {SEED}"
    paid_after = _paid(db, vendor_id)
    assert all(
        paid_after[key] == paid_before[key] + timedelta(days=PERIOD_DAYS) for key in paid_before
    )
