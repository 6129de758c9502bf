"""Expiry reminders: ``license.expiring`` N days before a license ends and
``license.expired`` once it has, each once per license and end of validity, as a
webhook event (in the outbox, with its schema) and a mail to the customer, which can
be stopped by the signed link it carries.

The reminders' job runs by hand with a clock the test moves (days ahead): no test
waits for a timer. The mails are read back from their sealed jobs.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
from fastapi import FastAPI
from sqlalchemy import select

from licentia.domain.errors import ConfigurationError
from licentia.server.background.kinds import Resources, _remind
from licentia.server.db.base import utcnow
from licentia.server.db.engine import Database, run_read, run_write
from licentia.server.jobs import Registry, Worker, enqueue
from licentia.server.jobs.models import JobRow
from licentia.server.keys.master import MasterKey
from licentia.server.mail import Mail, Mailer, MailTemplates
from licentia.server.notifications.mail_jobs import MAIL_JOB, opened
from licentia.server.notifications.reminders import REMINDERS_JOB
from licentia.server.settings import Settings
from licentia.server.webhooks.models import WebhookEvent
from tests.factories import VendorHandle
from tests.integration.web.pages import Browser

SCHEMAS = Path(__file__).parents[2] / "docs" / "webhook-events"


class Clock:
    def __init__(self) -> None:
        self.ahead = timedelta(0)

    def __call__(self) -> datetime:
        return utcnow() + self.ahead


def _no_mailer() -> Mailer:
    raise AssertionError("the reminders' job queues mails; mail jobs send them")


class Reminders:
    """The reminders' job of one node, on the test's clock."""

    def __init__(self, settings: Settings, database: Database, master: MasterKey) -> None:
        self.clock = Clock()
        resources = Resources(settings, database, master, _no_mailer, MailTemplates(), self.clock)
        registry = Registry()
        registry.one_off(REMINDERS_JOB, _remind(resources))
        self.worker = Worker(database, registry, clock=self.clock)
        self.database, self.master = database, master

    def run(self) -> None:
        run_write(self.database, lambda s: enqueue(s, REMINDERS_JOB, {}))
        self.worker.run_due()

    def mails_to(self, address: str) -> list[Mail]:
        """The mails queued for ``address``, oldest first (PostgreSQL returns rows in
        no set order once other tests' workers have updated the table)."""
        payloads = run_read(
            self.database,
            lambda s: s.scalars(
                select(JobRow.payload)
                .where(JobRow.kind == MAIL_JOB)
                .order_by(JobRow.created_at, JobRow.id)
            ).all(),
        )
        return [mail for mail in self._readable(payloads) if mail.to == address]

    def _readable(self, payloads: Sequence[dict[str, Any]]) -> Iterator[Mail]:
        # The job table is shared by every test of this database, and apps built by
        # other tests seal their mail under master keys of their own.
        for payload in payloads:
            try:
                yield opened(self.master, payload)
            except ConfigurationError:
                continue


def events_of(database: Database, license_id: str) -> list[dict[str, Any]]:
    rows = run_read(
        database,
        lambda s: s.scalars(
            select(WebhookEvent.payload)
            .where(WebhookEvent.object_id == license_id)
            .order_by(WebhookEvent.seq)
        ).all(),
    )
    return [row for row in rows if row["type"] in ("license.expiring", "license.expired")]


def customer_license(vendor: VendorHandle, days: int, **options: Any) -> tuple[str, str]:
    """A license of ``days`` days from issue for a customer with an address of its own."""
    email = f"{vendor.unique('buyer').lower()}@{vendor.slug}.test"
    customer = vendor.ok("POST", "/customers", json={"name": "Buyer", "email": email})
    validity = {"validity": {"kind": "days_from_issue", "days": days}}
    template = vendor.template(validity | options)
    order = vendor.order([{"sku": template["sku"]}], customer_id=customer["id"])
    [license_id] = vendor.ok("GET", f"/tickets/{order['ticket_id']}")["license_ids"]
    return license_id, email


def test_a_license_is_reminded_of_once_before_its_end_and_once_after(
    vendors, settings, database, master
):
    vendor = vendors.create()
    license_id, email = customer_license(vendor, days=10)
    reminders = Reminders(settings, database, master)
    reminders.run()
    reminders.run()  # again, and on another node: nothing new
    Reminders(settings, database, master).run()
    [expiring] = events_of(database, license_id)
    jsonschema.validate(expiring, _schema("license.expiring"))
    assert expiring["data"]["days_left"] == 9 and expiring["data"]["id"] == license_id
    [mail] = reminders.mails_to(email)
    assert "ends on" in mail.text and mail.unsubscribe_url is not None
    assert mail.unsubscribe_url in mail.text
    reminders.clock.ahead = timedelta(days=11)
    reminders.run()
    reminders.run()
    expired = events_of(database, license_id)[1:]
    assert [event["type"] for event in expired] == ["license.expired"]
    jsonschema.validate(expired[0], _schema("license.expired"))
    assert len(reminders.mails_to(email)) == 2
    assert "ended on" in reminders.mails_to(email)[1].subject + reminders.mails_to(email)[1].text


def test_n_days_is_the_templates_option_and_an_extension_makes_a_new_reminder(
    vendors, settings, database, master
):
    vendor = vendors.create()
    quiet, _ = customer_license(vendor, days=10, expiry_reminder_days=0)
    early, _ = customer_license(vendor, days=40, expiry_reminder_days=30)
    reminders = Reminders(settings, database, master)
    reminders.run()
    assert events_of(database, quiet) == [] and events_of(database, early) == []
    reminders.clock.ahead = timedelta(days=11)
    reminders.run()
    assert [e["type"] for e in events_of(database, early)] == ["license.expiring"]
    assert [e["type"] for e in events_of(database, quiet)] == ["license.expired"]
    vendor.ok("POST", f"/licenses/{early}/actions/extend", json={"days": 1})  # 30 days left
    reminders.run()
    assert [e["type"] for e in events_of(database, early)] == ["license.expiring"] * 2


def test_the_unsubscribe_link_stops_reminders_but_not_the_events(
    app: FastAPI, vendors, settings, database, master
):
    vendor = vendors.create()
    email = f"{vendor.unique('buyer').lower()}@{vendor.slug}.test"
    customer = vendor.ok("POST", "/customers", json={"name": "Buyer", "email": email})
    validity = {"validity": {"kind": "days_from_issue", "days": 10}}
    sku = vendor.template(validity)["sku"]
    first = vendor.order([{"sku": sku}], customer_id=customer["id"])
    reminders = Reminders(settings, database, master)
    reminders.run()
    [mail] = reminders.mails_to(email)
    assert mail.unsubscribe_url is not None
    page = urlsplit(mail.unsubscribe_url).path
    browser = Browser(app)
    shown = browser.get(page)
    assert shown.status_code == 200 and email in shown.text  # asks first: nothing recorded
    done = browser.submit(page, page, {})
    assert done.status_code == 200 and "no more reminders" in done.text
    second = vendor.order([{"sku": sku}], customer_id=customer["id"])
    reminders.run()
    assert len(reminders.mails_to(email)) == 1  # no mail for the second license
    [license_id] = vendor.ok("GET", f"/tickets/{second['ticket_id']}")["license_ids"]
    assert [e["type"] for e in events_of(database, license_id)] == ["license.expiring"]
    assert first["id"] != second["id"]
    forged = page[:-3] + "abc"
    assert browser.get(forged).status_code == 404


def test_reminder_jobs_racing_on_several_nodes_remind_once(vendors, settings, database, master):
    vendor = vendors.create()
    license_id, email = customer_license(vendor, days=3)
    nodes = [Reminders(settings, database, master) for _ in range(3)]
    for _ in nodes:
        run_write(database, lambda s: enqueue(s, REMINDERS_JOB, {}))
    gate = threading.Barrier(len(nodes))

    def race(node: Reminders) -> None:
        gate.wait()
        node.worker.run_due()

    threads = [threading.Thread(target=race, args=(node,)) for node in nodes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(events_of(database, license_id)) == 1
    assert len(nodes[0].mails_to(email)) == 1


def _schema(event_type: str) -> dict[str, Any]:
    return dict(json.loads((SCHEMAS / f"{event_type}.schema.json").read_text()))
