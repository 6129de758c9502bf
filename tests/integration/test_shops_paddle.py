"""Paddle Billing's notifications, built and signed as Paddle signs them
(``Paddle-Signature: ts=…;h1=…``), become orders once; an approved full refund or a
cancelled subscription acts on the licenses as the vendor chose, and a subscription
Paddle canceled is cancelled once and renewed no more."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from licentia.server.db.engine import Database
from tests.factories import VendorFactory, VendorHandle
from tests.integration.test_audit import all_events
from tests.integration.test_shops_stripe import renew_all_due
from tests.integration.test_subscriptions import events_of
from tests.support.shops import (
    Shop,
    connect,
    new_id,
    paddle_canceled_subscription,
    paddle_event,
    paddle_refund,
    paddle_transaction,
)


def _states(vendor: VendorHandle, order_id: str) -> set[str]:
    ticket = vendor.ok("GET", f"/tickets/{vendor.ok('GET', f'/orders/{order_id}')['ticket_id']}")
    return {vendor.ok("GET", f"/licenses/{i}")["state"] for i in ticket["license_ids"]}


def test_a_completed_transaction_becomes_an_order_for_the_paddle_customer(vendors: VendorFactory):
    shop = connect(vendors.create(), "paddle")
    price, sku = shop.mapped_price()
    transaction = paddle_transaction([(price, 2)], customer="ctm_01jane")
    answer = shop.send(paddle_event("transaction.completed", transaction))
    assert answer.status_code == 200, answer.text
    order = shop.vendor.ok("GET", f"/orders/{answer.json()['order_id']}")
    assert order["external_order_id"] == f"paddle:{transaction['id']}"
    assert [(line["sku"], line["quantity"]) for line in order["lines"]] == [(sku, 2)]
    customer = shop.vendor.ok("GET", f"/customers/{order['customer_id']}")
    assert customer["external_id"] == "ctm_01jane"


def test_ten_concurrent_copies_of_one_notification_make_one_order(vendors: VendorFactory):
    shop = connect(vendors.create(), "paddle")
    price, _ = shop.mapped_price()
    body = paddle_event("transaction.completed", paddle_transaction([(price, 1)]))
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(lambda _: shop.send(body), range(10)))
    assert [a.status_code for a in answers] == [200] * 10, [a.text for a in answers]
    assert sorted(a.json()["status"] for a in answers) == ["processed"] + ["replayed"] * 9
    assert len(shop.vendor.ok("GET", "/orders")["items"]) == 1


def test_a_wrong_or_stale_signature_is_refused(vendors: VendorFactory):
    shop = connect(vendors.create(), "paddle")
    price, _ = shop.mapped_price()
    body = paddle_event("transaction.completed", paddle_transaction([(price, 1)]))
    for header in (
        shop.header(body, secret="pdl_ntfset_01wrong_" + "y" * 24),
        shop.header(body, timestamp=int(time.time()) - 60),
        "ts=abc;h1=00",
        "nonsense",
        "",
    ):
        answer = shop.send(body, header=header)
        assert answer.status_code == 401, (header, answer.text)
        assert answer.json()["code"] == "SHOP_SIGNATURE_INVALID"
    assert shop.vendor.ok("GET", "/orders")["items"] == []


def test_subscription_renewals_extend_the_same_order(vendors: VendorFactory):
    shop = connect(vendors.create(), "paddle")
    template = shop.vendor.template({"validity": {"kind": "days_from_issue", "days": 30}})
    price, _ = shop.mapped_price(template)
    subscription, customer = new_id("sub"), new_id("ctm")
    first_end = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    first = paddle_transaction(
        [(price, 1)], customer=customer, subscription=subscription, ends_at=first_end.isoformat()
    )
    placed = shop.send(paddle_event("transaction.completed", first)).json()
    assert placed["outcome"] == "order_created"
    next_end = first_end + timedelta(days=30)
    renewal = paddle_transaction(
        [(price, 1)], customer=customer, subscription=subscription, ends_at=next_end.isoformat()
    )
    renewal["origin"] = "subscription_recurring"
    renewed = shop.send(paddle_event("transaction.completed", renewal)).json()
    assert (renewed["order_id"], renewed["outcome"]) == (placed["order_id"], "renewed")
    order = shop.vendor.ok("GET", f"/orders/{placed['order_id']}")
    [license_id] = shop.vendor.ok("GET", f"/tickets/{order['ticket_id']}")["license_ids"]
    license_ = shop.vendor.ok("GET", f"/licenses/{license_id}")
    assert datetime.fromisoformat(license_["valid_until"]) == next_end
    # A refund of the renewal's transaction finds the subscription's order.
    refund = shop.send(paddle_event("adjustment.created", paddle_refund(renewal["id"]))).json()
    assert (refund["order_id"], refund["outcome"]) == (placed["order_id"], "licenses_suspended")


def test_an_approved_full_refund_acts_and_a_partial_or_pending_one_does_not(
    vendors: VendorFactory,
):
    shop = connect(vendors.create(), "paddle", refund_action="withdraw")
    price, _ = shop.mapped_price()
    transaction = paddle_transaction([(price, 1)])
    placed = shop.send(paddle_event("transaction.completed", transaction)).json()
    pending = paddle_refund(transaction["id"]) | {"status": "pending_approval"}
    partial = paddle_refund(transaction["id"], partial=True)
    for data in (pending, partial):
        assert shop.send(paddle_event("adjustment.created", data)).json()["status"] == "ignored"
    assert _states(shop.vendor, placed["order_id"]) == {"available"}
    approved = paddle_refund(transaction["id"])
    assert shop.send(paddle_event("adjustment.updated", approved)).status_code == 200
    assert _states(shop.vendor, placed["order_id"]) == {"withdrawn"}


def test_a_cancelled_subscription_suspends_when_the_vendor_says_so(vendors: VendorFactory):
    shop = connect(vendors.create(), "paddle", cancel_action="suspend")
    price, _ = shop.mapped_price()
    subscription = new_id("sub")
    transaction = paddle_transaction(
        [(price, 1)], subscription=subscription, ends_at="2999-01-01T00:00:00Z"
    )
    placed = shop.send(paddle_event("transaction.completed", transaction)).json()
    canceled = {"id": subscription, "status": "canceled"}
    answer = shop.send(paddle_event("subscription.canceled", canceled)).json()
    assert answer["outcome"] == "licenses_suspended"
    assert _states(shop.vendor, placed["order_id"]) == {"suspended"}


def test_an_unmapped_paddle_price_is_refused_and_recorded(vendors: VendorFactory):
    shop = connect(vendors.create(), "paddle")
    answer = shop.send(paddle_event("transaction.completed", paddle_transaction([("pri_x", 1)])))
    assert (answer.status_code, answer.json()["code"]) == (422, "SHOP_ITEM_UNMAPPED")
    [event] = shop.vendor.ok("GET", "/shop-events", params={"provider": "paddle"})["items"]
    assert (event["status"], event["event_type"]) == ("failed", "transaction.completed")


def test_stripe_and_paddle_of_one_vendor_are_kept_apart(vendors: VendorFactory):
    vendor = vendors.create()
    stripe_shop, paddle_shop = connect(vendor, "stripe"), connect(vendor, "paddle")
    price, _ = stripe_shop.mapped_price()
    # A Paddle event naming a price mapped for Stripe only is not Stripe's sale.
    body = paddle_event("transaction.completed", paddle_transaction([(price, 1)]))
    assert paddle_shop.send(body).json()["code"] == "SHOP_ITEM_UNMAPPED"
    # A Paddle body signed with Paddle's secret is no Stripe event.
    assert stripe_shop.send(body, header=paddle_shop.header(body)).status_code == 401


def _subscription(shop: Shop, **terms: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A Paddle subscription of a subscription template: its first transaction's
    order, and its one license."""
    subscription_terms = {"period": "monthly", "grace_days": 7, **terms}
    template = shop.vendor.template({"subscription": subscription_terms})
    price, _ = shop.mapped_price(template)
    subscription, customer = new_id("sub"), new_id("ctm")
    first_end = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    first = paddle_transaction(
        [(price, 1)], customer=customer, subscription=subscription, ends_at=first_end.isoformat()
    )
    placed = shop.send(paddle_event("transaction.completed", first)).json()
    order = shop.vendor.ok("GET", f"/orders/{placed['order_id']}")
    [license_id] = shop.vendor.ok("GET", f"/tickets/{order['ticket_id']}")["license_ids"]
    return first, shop.vendor.ok("GET", f"/licenses/{license_id}")


def _renewal(first: dict[str, Any], license_: dict[str, Any]) -> tuple[dict[str, Any], datetime]:
    paid_until = datetime.fromisoformat(license_["subscription"]["paid_until"])
    end = (paid_until + timedelta(days=30)).replace(microsecond=0)
    renewal = paddle_transaction(
        [(first["items"][0]["price"]["id"], 1)],
        customer=first["customer_id"],
        subscription=first["subscription_id"],
        ends_at=end.isoformat(),
    )
    renewal["origin"] = "subscription_recurring"
    return renewal, end


def test_a_renewal_transaction_renews_the_subscription_once_however_often_it_comes(
    vendors: VendorFactory, live_server: str
):
    shop = connect(vendors.create(), "paddle")
    first, license_ = _subscription(shop)
    renewal, end = _renewal(first, license_)
    event_id = new_id("evt")
    body = paddle_event("transaction.completed", renewal, event_id)

    answers = shop.send_together(body, 10, live_server)

    assert [a.status_code for a in answers] == [200] * 10, [a.text for a in answers]
    assert sorted(a.json()["status"] for a in answers) == ["processed"] + ["replayed"] * 9
    assert {a.json()["outcome"] for a in answers} == {"renewed"}
    renewed = shop.vendor.ok("GET", f"/licenses/{license_['id']}")
    assert datetime.fromisoformat(renewed["subscription"]["paid_until"]) == end
    [event] = all_events(shop.vendor, action="subscription.renewed")
    assert event["after"]["renewal"]["source"] == "paddle"
    assert event["after"]["renewal"]["external_id"] == event_id


def test_a_renewal_of_a_subscription_licentia_has_no_order_for_places_none(
    vendors: VendorFactory,
):
    shop = connect(vendors.create(), "paddle")
    price, _ = shop.mapped_price()
    end = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    renewal = paddle_transaction([(price, 1)], subscription=new_id("sub"), ends_at=end.isoformat())
    renewal["origin"] = "subscription_recurring"

    answer = shop.send(paddle_event("transaction.completed", renewal))

    assert answer.status_code == 200, answer.text
    assert (answer.json()["status"], answer.json()["outcome"]) == ("processed", "no_order")
    assert shop.vendor.ok("GET", "/orders")["items"] == []


def test_a_subscription_canceled_in_paddle_is_cancelled_once_and_renewed_no_more(
    vendors: VendorFactory, database: Database, live_server: str
):
    shop = connect(vendors.create(), "paddle")
    first, license_ = _subscription(shop, automatic=True)
    paid_until = license_["subscription"]["paid_until"]
    event_id = new_id("evt")
    canceled = paddle_canceled_subscription(first["subscription_id"], first["customer_id"])
    body = paddle_event("subscription.canceled", canceled, event_id)

    answers = shop.send_together(body, 10, live_server)

    assert [a.status_code for a in answers] == [200] * 10, [a.text for a in answers]
    assert sorted(a.json()["status"] for a in answers) == ["processed"] + ["replayed"] * 9
    assert {a.json()["outcome"] for a in answers} == {"subscription_cancelled"}
    assert events_of(database, license_["id"], "subscription.cancelled") == 1
    [event] = all_events(shop.vendor, action="subscription.cancelled")
    assert (event["actor_type"], event["actor_id"]) == ("shop", "paddle")
    assert event["after"]["cancellation"] == {"source": "paddle", "external_id": event_id}
    cancelled = shop.vendor.ok("GET", f"/licenses/{license_['id']}")
    assert (cancelled["state"], cancelled["subscription"]["status"]) == ("available", "cancelled")
    assert cancelled["valid_until"] == paid_until  # without the grace

    renew_all_due(database, datetime.fromisoformat(paid_until) + timedelta(days=1))
    renewal, _ = _renewal(first, license_)
    late = shop.send(paddle_event("transaction.completed", renewal)).json()

    assert late["outcome"] == "unchanged"
    after = shop.vendor.ok("GET", f"/licenses/{license_['id']}")
    assert after["subscription"]["paid_until"] == paid_until
    assert all_events(shop.vendor, action="subscription.renewed") == []
