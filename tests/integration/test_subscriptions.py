"""Subscriptions on SQLite and PostgreSQL: a license paid one period at a time, renewed
by an ERP through the API (idempotently by its own id, also when the same request
races itself), by a shop through the use case, or by Licentia each period; cancelled;
kept valid through a grace period; and each renewal reaching devices and cloud tokens.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from licentia.client import LicenseExpiredError
from licentia.domain.actors import Actor, ActorKind
from licentia.domain.scopes import SCOPES
from licentia.server.background.kinds import Resources, _renew_subscriptions, job_kinds
from licentia.server.db.engine import Database, run_write
from licentia.server.jobs import Registry, Worker
from licentia.server.jobs.models import JobRow
from licentia.server.jobs.runner import period_start
from licentia.server.licenses.models import License
from licentia.server.licenses.services import state_of, subscription_of
from licentia.server.mail import Mailer, MailTemplates
from licentia.server.subscriptions.models import SubscriptionRenewal
from licentia.server.subscriptions.services import (
    RENEWALS_JOB,
    renew_due,
    renew_subscription,
)
from licentia.server.webhooks.models import WebhookEvent
from tests.factories import VendorHandle
from tests.integration.test_audit import all_events
from tests.integration.test_client_sdk import lab  # noqa: F401 - a fixture
from tests.integration.test_cloud_sdk import cloud, live_url  # noqa: F401 - fixtures

MONTHLY = {"period": "monthly", "grace_days": 7}


def subscription_license(vendor: VendorHandle, **terms: Any) -> dict[str, Any]:
    return vendor.license({"subscription": terms or MONTHLY})


def renew(vendor: VendorHandle, license_id: str, **body: Any) -> Any:
    return vendor.ok("POST", f"/licenses/{license_id}/subscription/actions/renew", json=body)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def events_of(database: Database, license_id: str, event_type: str) -> int:
    with database.read() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(WebhookEvent)
                .where(WebhookEvent.object_id == license_id, WebhookEvent.type == event_type)
            )
            or 0
        )


def actor_of(vendor: VendorHandle) -> Actor:
    return Actor(ActorKind.API_KEY, "shop", vendor.id, frozenset(SCOPES))


# --- issue and the template option ----------------------------------------------------------


def test_a_subscription_license_is_paid_for_its_first_period_and_valid_through_its_grace(
    vendors,
):
    vendor = vendors.create()
    license_ = subscription_license(vendor)

    subscription = license_["subscription"]
    issued, paid_until = at(license_["issued_at"]), at(subscription["paid_until"])
    assert paid_until.time() == issued.time() and (paid_until - issued).days in range(28, 32)
    assert at(license_["valid_until"]) == paid_until + timedelta(days=7)
    assert subscription | {"paid_until": None} == {
        "period": "monthly",
        "days": None,
        "automatic": False,
        "grace_days": 7,
        "paid_until": None,
        "cancelled_at": None,
        "next_renewal_at": subscription["paid_until"],
        "status": "active",
    }
    assert vendor.license()["subscription"] is None


@pytest.mark.parametrize(
    ("terms", "field"),
    [
        ({"period": "weekly"}, "options.subscription.period"),
        ({"period": "days"}, "options.subscription.days"),
        ({"period": "monthly", "days": 30}, "options.subscription.days"),
        ({"period": "monthly", "grace_days": -1}, "options.subscription.grace_days"),
    ],
)
def test_bad_subscription_terms_are_refused_naming_the_option(vendors, terms, field):
    vendor = vendors.create()
    product = vendor.product()
    response = vendor.post(
        "/templates",
        json={
            "sku": "SUB-BAD",
            "name": "Bad",
            "product_id": product["id"],
            "features": [],
            "options": {"subscription": terms},
        },
    )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field


def test_a_subscription_leaves_the_validity_to_itself(vendors):
    vendor = vendors.create()
    product = vendor.product()
    response = vendor.post(
        "/templates",
        json={
            "sku": "SUB-FIXED",
            "name": "Fixed",
            "product_id": product["id"],
            "features": [],
            "options": {
                "subscription": MONTHLY,
                "validity": {"kind": "days_from_issue", "days": 10},
            },
        },
    )
    assert response.status_code == 422
    assert response.json()["field"] == "options.validity.kind"


# --- renewals by the ERP (API) ---------------------------------------------------------------


def test_an_erp_renewal_pays_one_more_period_once_per_external_id(vendors, database):
    vendor = vendors.create()
    license_ = subscription_license(vendor, period="days", days=30, grace_days=3)
    first_end = at(license_["subscription"]["paid_until"])

    renewed = renew(vendor, license_["id"], external_id="INV-1")
    replayed = renew(vendor, license_["id"], external_id="INV-1")
    again = renew(vendor, license_["id"], external_id="INV-2")

    assert renewed["replayed"] is False and replayed["replayed"] is True
    assert replayed["renewal"] == renewed["renewal"]
    assert at(renewed["renewal"]["paid_from"]) == first_end
    assert at(renewed["license"]["subscription"]["paid_until"]) == first_end + timedelta(days=30)
    assert at(again["license"]["subscription"]["paid_until"]) == first_end + timedelta(days=60)
    now = vendor.ok("GET", f"/licenses/{license_['id']}")
    assert at(now["valid_until"]) == first_end + timedelta(days=63)
    assert now["version"] == license_["version"] + 2
    assert events_of(database, license_["id"], "subscription.renewed") == 2


def test_an_erp_names_the_paid_end_and_an_older_one_renews_nothing(vendors):
    vendor = vendors.create()
    license_ = subscription_license(vendor)
    paid_until = at(license_["subscription"]["paid_until"]) + timedelta(days=45)

    renewed = renew(vendor, license_["id"], external_id="A", paid_until=paid_until.isoformat())
    stale = renew(
        vendor,
        license_["id"],
        external_id="B",
        paid_until=(paid_until - timedelta(days=1)).isoformat(),
    )

    assert at(renewed["license"]["subscription"]["paid_until"]) == paid_until
    assert stale["renewal"] is None and stale["replayed"] is False
    assert stale["license"]["version"] == renewed["license"]["version"]


def test_renewing_what_is_no_subscription_or_is_cancelled_is_a_conflict(vendors):
    vendor = vendors.create()
    plain = vendor.license()
    license_ = subscription_license(vendor)
    path = f"/licenses/{license_['id']}/subscription/actions"

    refused = vendor.post(
        f"/licenses/{plain['id']}/subscription/actions/renew", json={"external_id": "x"}
    )
    cancelled = vendor.ok("POST", f"{path}/cancel", json={"external_id": "CANCEL-1"})
    late = vendor.post(f"{path}/renew", json={"external_id": "late"})
    withdrawn = subscription_license(vendor)
    vendor.ok("POST", f"/licenses/{withdrawn['id']}/actions/withdraw")
    gone = vendor.post(
        f"/licenses/{withdrawn['id']}/subscription/actions/renew", json={"external_id": "x"}
    )

    assert (refused.status_code, refused.json()["code"]) == (409, "NOT_A_SUBSCRIPTION")
    assert (late.status_code, late.json()["code"]) == (409, "SUBSCRIPTION_CANCELLED")
    assert (gone.status_code, gone.json()["code"]) == (409, "ILLEGAL_TRANSITION")
    assert cancelled["subscription"]["status"] == "cancelled"
    assert cancelled["subscription"]["next_renewal_at"] is None


def test_a_cancelled_subscription_runs_to_the_end_of_its_paid_period_without_grace(
    vendors, database
):
    vendor = vendors.create()
    license_ = subscription_license(vendor)
    path = f"/licenses/{license_['id']}/subscription/actions/cancel"

    cancelled = vendor.ok("POST", path, json={})
    again = vendor.ok("POST", path)

    assert cancelled["valid_until"] == license_["subscription"]["paid_until"]
    assert cancelled["state"] == "available"  # still paid for
    assert again == cancelled
    assert again["version"] == license_["version"] + 1
    assert events_of(database, license_["id"], "subscription.cancelled") == 1
    (event,) = all_events(vendor, action="subscription.cancelled")
    assert event["after"]["cancellation"] == {"source": "api", "external_id": None}


# --- a shop's renewal (the use case) and the grace period ---------------------------------------


def test_a_shop_renews_through_the_use_case_idempotently_by_its_event_id(vendors, database):
    vendor = vendors.create()
    license_ = subscription_license(vendor, period="yearly")
    paid_until = at(license_["subscription"]["paid_until"]) + timedelta(days=366)

    def shop(_: int) -> tuple[bool, str | None]:
        def work(session: Any) -> tuple[bool, str | None]:
            result = renew_subscription(
                session,
                actor_of(vendor),
                license_["id"],
                source="stripe",
                external_id="evt_1",
                paid_until=paid_until,
            )
            return result.replayed, result.renewal.id if result.renewal else None

        return run_write(database, work)

    answers = [shop(n) for n in range(3)]

    assert [replayed for replayed, _ in answers] == [False, True, True]
    assert len({renewal for _, renewal in answers}) == 1
    after = vendor.ok("GET", f"/licenses/{license_['id']}")
    assert at(after["subscription"]["paid_until"]) == paid_until
    (event,) = all_events(vendor, action="subscription.renewed")
    assert event["after"]["renewal"]["source"] == "stripe"


def test_a_late_renewal_leaves_the_license_valid_through_its_grace_then_it_expires(
    vendors, database
):
    vendor = vendors.create()
    license_ = subscription_license(vendor, period="days", days=10, grace_days=5)
    paid_until = at(license_["subscription"]["paid_until"])
    with database.read() as session:
        row = session.get_one(License, license_["id"])
        in_grace = paid_until + timedelta(days=2)
        after_grace = paid_until + timedelta(days=5)

        assert state_of(row, in_grace).value == "available"
        assert subscription_of(row, in_grace).status == "grace"  # type: ignore[union-attr]
        assert state_of(row, after_grace).value == "expired"
        assert subscription_of(row, after_grace).status == "ended"  # type: ignore[union-attr]

    renewed = renew(vendor, license_["id"], external_id="late-payment")

    # the paid period continues where it ended, not from the day the payment came
    assert at(renewed["license"]["subscription"]["paid_until"]) == paid_until + timedelta(days=10)


# --- automatic renewals ----------------------------------------------------------------------


def test_an_automatic_subscription_renews_each_period_once_whoever_runs_the_job(vendors, database):
    vendor = vendors.create()
    license_ = subscription_license(vendor, period="days", days=30, automatic=True)
    paid_until = at(license_["subscription"]["paid_until"])
    due = at(license_["subscription"]["next_renewal_at"])
    assert due == paid_until - timedelta(days=7)  # the template's refresh_days before the end

    run_write(database, lambda session: renew_due(session, due - timedelta(seconds=1)))
    assert _renewals(database, vendor) == 0
    racing = threading.Barrier(4, timeout=10)

    def job(_: int) -> None:
        racing.wait()
        run_write(database, lambda session: renew_due(session, due))

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(job, range(4)))

    assert _renewals(database, vendor) == 1
    after = vendor.ok("GET", f"/licenses/{license_['id']}")
    assert at(after["subscription"]["paid_until"]) == paid_until + timedelta(days=30)
    assert at(after["subscription"]["next_renewal_at"]) == paid_until + timedelta(days=23)
    (event,) = all_events(vendor, action="subscription.renewed")
    assert event["after"]["renewal"]["source"] == "automatic"
    assert event["actor_type"] == "system"


def test_the_renewal_job_renews_a_period_once_however_many_nodes_run_it(
    vendors, database, settings, master
):
    vendor = vendors.create()
    license_ = subscription_license(vendor, period="days", days=30, automatic=True)
    paid_until = at(license_["subscription"]["paid_until"])
    due = at(license_["subscription"]["next_renewal_at"])
    resources = Resources(settings, database, master, _no_mailer, MailTemplates(), lambda: due)
    racing = threading.Barrier(3, timeout=10)

    def node(_: int) -> None:
        # the renewal kind alone: the shared job table holds other tests' jobs too
        registry = Registry()
        registry.every(RENEWALS_JOB, timedelta(minutes=1), _renew_subscriptions(resources))
        worker = Worker(database, registry, clock=lambda: due)
        racing.wait()
        worker.run_due()

    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(node, range(3)))

    # one job for the period, whichever node asked first
    key = f"{RENEWALS_JOB}@{period_start(due, timedelta(minutes=1)).isoformat()}"
    with database.read() as session:
        jobs = session.scalars(select(JobRow.status).where(JobRow.key == key)).all()
    assert jobs == ["done"]
    assert _renewals(database, vendor) == 1
    after = vendor.ok("GET", f"/licenses/{license_['id']}")
    assert at(after["subscription"]["paid_until"]) == paid_until + timedelta(days=30)
    assert events_of(database, license_["id"], "subscription.renewed") == 1


def test_the_renewal_job_runs_where_the_settings_ask_for_it(settings, database, master):
    def kinds(seconds: float) -> list[str]:
        renewing = settings.model_copy(update={"subscription_renew_seconds": seconds})
        return job_kinds(Resources(renewing, database, master, _no_mailer, MailTemplates())).names

    assert RENEWALS_JOB in kinds(60)
    assert RENEWALS_JOB not in kinds(0)


def _no_mailer() -> Mailer:
    raise AssertionError("renewals send no mail")


def test_a_cancelled_automatic_subscription_is_not_renewed(vendors, database):
    vendor = vendors.create()
    license_ = subscription_license(vendor, period="days", days=30, automatic=True)
    vendor.ok("POST", f"/licenses/{license_['id']}/subscription/actions/cancel")
    later = at(license_["subscription"]["paid_until"]) + timedelta(days=1)

    run_write(database, lambda session: renew_due(session, later))
    assert _renewals(database, vendor) == 0
    assert vendor.ok("GET", f"/licenses/{license_['id']}")["state"] == "available"


def _renewals(database: Database, vendor: VendorHandle) -> int:
    """The periods paid for this test's vendor (the shared database holds other
    tests' subscriptions too, which the job renews when they are due)."""
    with database.read() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(SubscriptionRenewal)
                .where(SubscriptionRenewal.vendor_id == vendor.id)
            )
            or 0
        )


# --- the same renewal sent many times at once ----------------------------------------------------


def test_the_same_renewal_sent_ten_times_at_once_renews_once_and_emits_one_event(
    vendors, database, live_server
):
    vendor = vendors.create()
    license_ = subscription_license(vendor)
    url = f"{live_server}/api/v1/licenses/{license_['id']}/subscription/actions/renew"
    together = threading.Barrier(10, timeout=10)

    def send(_: int) -> dict[str, Any]:
        with httpx.Client(headers=vendor.headers, timeout=30) as http:
            together.wait()
            response = http.post(url, json={"external_id": "INV-2026-0042"})
        assert response.status_code == 200, response.text
        return dict(response.json())

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(send, range(10)))

    assert sorted(answer["replayed"] for answer in answers) == [False] + [True] * 9
    assert len({answer["renewal"]["id"] for answer in answers}) == 1
    after = vendor.ok("GET", f"/licenses/{license_['id']}")
    assert after["version"] == license_["version"] + 1
    assert events_of(database, license_["id"], "subscription.renewed") == 1


# --- devices and cloud tokens ---------------------------------------------------------------


def test_a_renewal_reaches_an_offline_device_at_its_next_sync(lab):  # noqa: F811
    code, _ = lab.ticket(subscription={"period": "days", "days": 30})
    device = lab.device()
    (before,) = device.activate(code)
    assert before.valid_until is not None

    renew(lab.vendor, before.license_id, external_id="INV-7")
    assert device.require(before.product).valid_until == before.valid_until  # not synced yet
    result = device.sync()

    assert result.updated == (before.license_id,)
    assert device.require(before.product).valid_until == before.valid_until + timedelta(days=30)


def test_a_cloud_check_after_a_late_renewal_gets_a_token_at_once(cloud, database):  # noqa: F811
    setup = cloud(delivery="cloud", subscription={"period": "days", "days": 30})
    client = setup.client("laptop")
    client.check(setup.product)
    lapsed = datetime.now(UTC) - timedelta(hours=1)
    with database.transaction() as session:  # the paid period (no grace) ended an hour ago
        session.execute(
            update(License)
            .where(License.id == setup.license_id)
            .values(paid_until=lapsed, valid_until=lapsed)
        )
    with pytest.raises(LicenseExpiredError):
        setup.client("desk").check(setup.product)

    renew(setup.vendor, setup.license_id, external_id="INV-9")
    token = setup.client("desk").check(setup.product)

    assert token.license_id == setup.license_id and token.source == "server"
    assert token.expires_at > datetime.now(UTC)
    renewed = setup.vendor.ok("GET", f"/licenses/{setup.license_id}")
    assert at(renewed["valid_until"]) == lapsed + timedelta(days=30)
