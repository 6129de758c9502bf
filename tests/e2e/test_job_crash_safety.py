"""Durable jobs survive SIGKILL: the server is killed at random moments while its jobs
issue large orders in batches, send mail (password resets, expiry reminders) to an SMTP
server and remind customers of licenses that end. After the last restart, once the
queue is drained, every job's effect happened exactly once:

- each acknowledged large order is completed, with exactly its licenses, each issued
  (and audited) once, and completed once;
- each license that ends soon has exactly one ``license.expiring`` event;
- every mail job was sent, and each message that arrived belongs to a job: its
  Message-ID is the job's id, so a mail resent after a kill between the mail server's
  answer and the job's commit is the same message (counted, not failed: SMTP offers
  no way to make that window vanish, docs/architecture.md);
- the audit chains verify.

``LICENTIA_JOB_CRASH_KILLS`` kills per backend (8 here; ``make crash`` runs 100), at
moments drawn from ``LICENTIA_CRASH_SEED`` (printed; the time by default).
"""

from __future__ import annotations

import asyncio
import base64
import email
import os
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from licentia.server.audit.models import AuditEvent
from licentia.server.db.base import utcnow
from licentia.server.db.engine import Database, connect, run_read
from licentia.server.jobs.models import JobRow
from licentia.server.keys.master import MasterKey
from licentia.server.licenses.models import License
from licentia.server.notifications.mail_jobs import MAIL_JOB, opened
from licentia.server.orders.models import Order, OrderLine
from licentia.server.webhooks.models import WebhookEvent
from tests.e2e.harness import respawn
from tests.e2e.harness.cluster import Environment, migrate
from tests.support.servers import free_port, new_environment

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("crash-safety")]

KILLS = int(os.environ.get("LICENTIA_JOB_CRASH_KILLS", "8"))
SEED = int(os.environ.get("LICENTIA_CRASH_SEED", str(int(time.time()))))
UPTIME = (0.3, 1.5)  # seconds between a server's readiness and its kill
LARGE, BATCH = 400, 50  # licenses of a large order; licenses a job issues at once
PASSWORD = "crash-safety-password-1"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Inbox:
    """An SMTP server that takes its time over each message (so that kills land while
    mail is being sent) and counts what arrives by Message-ID."""

    def __init__(self) -> None:
        self.ids: Counter[str] = Counter()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        await asyncio.sleep(0.05)
        message = email.message_from_bytes(envelope.content)
        self.ids[str(message["Message-ID"]).strip("<>").removesuffix("@licentia")] += 1
        return "250 OK"


@pytest.fixture(scope="module")
def inbox() -> Iterator[tuple[Inbox, int]]:
    received, port = Inbox(), free_port()
    controller = Controller(received, hostname="127.0.0.1", port=port)
    controller.start()
    yield received, port
    controller.stop()


@pytest.fixture
def env(backend: str, database_url: str, tmp_path: Path, inbox: tuple[Inbox, int]) -> Environment:
    extra = {
        "LICENTIA_JOB_POLL_SECONDS": "0.1",
        "LICENTIA_JOB_LEASE_SECONDS": "2",
        "LICENTIA_REMINDER_SECONDS": "1",
        "LICENTIA_ORDER_SYNCHRONOUS_LICENSES": "100",
        "LICENTIA_ORDER_ISSUE_BATCH": str(BATCH),
        "LICENTIA_MAIL_URL": f"smtp://127.0.0.1:{inbox[1]}",
        "LICENTIA_DATABASE_POOL_SIZE": "4",
        "LICENTIA_NEW_USER_PASSWORD": PASSWORD,
    }
    env = new_environment(database_url, tmp_path, extra)
    migrate(env)
    return env


@pytest.fixture
def server(env: Environment) -> Iterator[respawn.RespawningServer]:
    server = respawn.start(env)
    try:
        yield server
    finally:
        server.stop()


class Shop:
    """One vendor's API, as its ERP calls it: every call retried until answered."""

    def __init__(self, env: Environment, base_url: str) -> None:
        self.slug = f"jobs-{random.randrange(10**8)}"
        self.vendor_id = str(
            env.cli("admin", "vendor", "create", self.slug, "--name", "Jobs")["id"]
        )
        key = env.cli("admin", "api-key", "create", "--vendor", self.slug, "--name", "erp")
        self.staff = f"admin@{self.slug}.test"
        env.cli("admin", "user", "create", "--vendor", self.slug, "--email", self.staff)
        self.http = httpx.Client(
            base_url=f"{base_url}/api/v1",
            headers={"Authorization": f"Bearer {key['key']}"},
            timeout=30,
        )
        self.base_url = base_url
        product = self.call("POST", "/products", json={"code": "JOBS", "name": "Jobs"})
        self.skus: dict[str, str] = {}
        for name, options in (
            ("BIG", {"delivery": "device"}),
            ("SHORT", {"validity": {"kind": "days_from_issue", "days": 5}}),
        ):
            body = {"sku": name, "name": name, "product_id": product["id"], "options": options}
            self.skus[name] = self.call("POST", "/templates", json=body)["sku"]
        self.orders: list[dict[str, Any]] = []  # acknowledged
        self.short_licenses: list[str] = []
        self.resets = 0

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        while True:
            try:
                answer = self.http.request(method, path, **kwargs)
            except httpx.TransportError:
                time.sleep(0.05)
                continue
            if answer.status_code >= 500:
                time.sleep(0.05)
                continue
            assert answer.status_code < 300, answer.text
            return answer.json()

    def customer(self, name: str) -> str:
        body = {"name": name, "email": f"{name}@{self.slug}.test", "external_id": name}
        key = {"Idempotency-Key": f"customer-{name}"}
        return str(self.call("POST", "/customers", json=body, headers=key)["id"])

    def order(self, name: str, sku: str, quantity: int, customer_id: str) -> dict[str, Any]:
        body = {
            "external_order_id": name,
            "customer_id": customer_id,
            "lines": [{"sku": sku, "quantity": quantity}],
        }
        order: dict[str, Any] = self.call(
            "POST", "/orders", json=body, headers={"Idempotency-Key": name}
        )
        return order

    def ask_for_reset(self) -> bool:
        """One password reset mail asked for; True once answered."""
        try:
            with httpx.Client(base_url=self.base_url, timeout=30) as browser:
                page = browser.get("/console/forgot")
                token = _CSRF.search(page.text)
                assert token, page.text[:300]
                answer = browser.post(
                    "/console/forgot",
                    data={"csrf_token": token.group(1), "vendor": self.slug, "email": self.staff},
                )
        except httpx.TransportError:
            return False
        return answer.status_code == 303


def _write(shop: Shop, stop: threading.Event, rng: random.Random) -> None:
    n = 0
    while not stop.is_set():
        n += 1
        customer = shop.customer(f"c{n}")
        if n % 2:
            order = shop.order(f"BIG-{n}", shop.skus["BIG"], LARGE, customer)
            assert order["status"] in ("processing", "completed")
            shop.orders.append(order)
        else:
            order = shop.order(f"SHORT-{n}", shop.skus["SHORT"], 1, customer)
            ticket = shop.call("GET", f"/tickets/{order['ticket_id']}")
            shop.short_licenses += ticket["license_ids"]
        if shop.ask_for_reset():
            shop.resets += 1
        time.sleep(rng.uniform(0.05, 0.3))


def _drained(db: Database, shop: Shop) -> bool:
    def look(session: Any) -> bool:
        processing = session.scalar(
            select(func.count()).where(
                Order.vendor_id == shop.vendor_id, Order.status != "completed"
            )
        )
        pending_mail = session.scalar(
            select(func.count()).where(JobRow.kind == MAIL_JOB, JobRow.status == "pending")
        )
        reminded = session.scalar(
            select(func.count()).where(
                WebhookEvent.vendor_id == shop.vendor_id, WebhookEvent.type == "license.expiring"
            )
        )
        return processing == 0 and pending_mail == 0 and reminded >= len(shop.short_licenses)

    return bool(run_read(db, look))


def test_every_jobs_effect_happens_once_through_sigkills(
    env: Environment, server: respawn.RespawningServer, inbox: tuple[Inbox, int]
) -> None:
    received = inbox[0]
    received.ids.clear()
    shop = Shop(env, server.url)
    db = connect(env.database_url, pool_size=2)
    started = utcnow() - timedelta(seconds=1)
    stop, rng = threading.Event(), random.Random(SEED)
    writer = threading.Thread(target=_write, args=(shop, stop, random.Random(SEED + 1)))
    writer.start()
    try:
        for _ in range(KILLS):
            time.sleep(rng.uniform(*UPTIME))
            server.kill()
    finally:
        stop.set()
        writer.join(timeout=300)
    deadline = time.monotonic() + 180
    while not _drained(db, shop) and time.monotonic() < deadline:
        time.sleep(0.5)
    try:
        master = MasterKey(base64.urlsafe_b64decode(env.master_key))
        problems = _check(db, shop, started, received, master)
    finally:
        db.dispose()
    audit = env.cli("audit", "verify")
    repeated = sum(count - 1 for count in received.ids.values())
    print(
        f"\n{KILLS} kills (seed {SEED}): {len(shop.orders)} large orders, "
        f"{len(shop.short_licenses)} reminded licenses, {shop.resets} resets acknowledged, "
        f"{len(received.ids)} mails ({repeated} received again under the same Message-ID)"
    )
    assert not writer.is_alive()
    assert problems == []
    assert audit["intact"] is True
    assert shop.orders and shop.short_licenses and shop.resets


def _check(
    db: Database, shop: Shop, started: datetime, received: Inbox, master: MasterKey
) -> list[str]:
    vendor_id = shop.vendor_id

    def look(session: Any) -> list[str]:
        problems = []
        for order in shop.orders:
            row = session.get(Order, order["id"])
            issued = session.scalar(
                select(func.count())
                .select_from(License)
                .join(OrderLine, OrderLine.id == License.order_line_id)
                .where(OrderLine.order_id == order["id"])
            )
            if row is None or row.status != "completed" or issued != LARGE:
                problems.append(f"order {order['id']}: {row and row.status}, {issued} licenses")
        actions = dict(
            session.execute(
                select(AuditEvent.action, func.count())
                .where(AuditEvent.chain == vendor_id)
                .group_by(AuditEvent.action)
            ).all()
        )
        licenses = session.scalar(select(func.count()).where(License.vendor_id == vendor_id))
        if actions.get("license.issued") != licenses:
            problems.append(f"{licenses} licenses, {actions.get('license.issued')} issued events")
        if actions.get("order.completed", 0) != len(shop.orders):
            completed = actions.get("order.completed")
            problems.append(f"{len(shop.orders)} large orders, completed {completed} times")
        for license_id in shop.short_licenses:
            events = session.scalar(
                select(func.count()).where(
                    WebhookEvent.object_id == license_id, WebhookEvent.type == "license.expiring"
                )
            )
            if events != 1:
                problems.append(f"license {license_id}: {events} license.expiring events")
        # The session's database holds other tests' jobs too: this run's are the new ones.
        mail_jobs = dict(
            session.execute(
                select(JobRow.id, JobRow.created_at).where(JobRow.kind == MAIL_JOB)
            ).all()
        )
        mine = {job for job, created in mail_jobs.items() if created >= started}
        rows = session.execute(
            select(JobRow.id, JobRow.status, JobRow.payload).where(JobRow.id.in_(mine))
        ).all()
        unsent = [row.id for row in rows if row.status != "done"]
        if unsent:
            problems.append(f"{len(unsent)} mail jobs not done: {unsent[:3]}")
        missing, stray = mine - set(received.ids), set(received.ids) - set(mail_jobs)
        if missing or stray:
            problems.append(
                f"mails missing {sorted(missing)[:3]}, without a job {sorted(stray)[:3]}"
            )
        resets = sum(1 for row in rows if opened(master, row.payload).to == shop.staff)
        if resets < shop.resets:  # an answered request had its mail queued with its link
            problems.append(f"{shop.resets} resets acknowledged, {resets} mails queued")
        return problems

    return list(run_read(db, look))
