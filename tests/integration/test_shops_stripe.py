"""Stripe's events, built and signed as Stripe signs them, become orders once: a
retry, a replay and ten concurrent copies of one event make one order; a renewal
renews a subscription once; a subscription Stripe ended is cancelled once and renewed
no more; a refund or a cancelled subscription suspends or withdraws the licenses, as
the vendor chose."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from licentia.server.db.engine import Database, run_write
from licentia.server.subscriptions.services import renew_due
from tests.factories import VendorFactory, VendorHandle
from tests.integration.test_audit import all_events
from tests.integration.test_subscriptions import events_of
from tests.support.shops import (
    Shop,
    checkout_session,
    connect,
    deleted_subscription,
    new_id,
    paid_invoice,
    refunded_charge,
    stripe_event,
)


def _licenses(vendor: VendorHandle, order_id: str) -> list[dict[str, Any]]:
    order = vendor.ok("GET", f"/orders/{order_id}")
    ticket = vendor.ok("GET", f"/tickets/{order['ticket_id']}")
    return [vendor.ok("GET", f"/licenses/{i}") for i in ticket["license_ids"]]


def test_a_paid_checkout_becomes_an_order_for_the_stripe_customer(vendors: VendorFactory):
    shop = connect(vendors.create())
    price, sku = shop.mapped_price()
    session = checkout_session([(price, 3)], customer="cus_Jane01")
    answer = shop.send(stripe_event("checkout.session.completed", session))
    assert answer.status_code == 200, answer.text
    receipt = answer.json()
    assert (receipt["status"], receipt["outcome"]) == ("processed", "order_created")
    order = shop.vendor.ok("GET", f"/orders/{receipt['order_id']}")
    assert order["external_order_id"] == f"stripe:{session['id']}"
    assert [(line["sku"], line["quantity"]) for line in order["lines"]] == [(sku, 3)]
    customer = shop.vendor.ok("GET", f"/customers/{order['customer_id']}")
    assert (customer["external_id"], customer["email"]) == ("cus_Jane01", "buyer@example.test")
    assert customer["name"] == "Jane Buyer"
    assert len(_licenses(shop.vendor, order["id"])) == 3


def test_a_paid_checkout_whose_email_is_no_address_still_becomes_an_order(
    vendors: VendorFactory,
):
    shop = connect(vendors.create())
    price, _ = shop.mapped_price()
    session = checkout_session([(price, 1)], customer="cus_NoMail", email="not an address")
    answer = shop.send(stripe_event("checkout.session.completed", session))
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == "order_created"
    order = shop.vendor.ok("GET", f"/orders/{answer.json()['order_id']}")
    customer = shop.vendor.ok("GET", f"/customers/{order['customer_id']}")
    assert (customer["external_id"], customer["email"]) == ("cus_NoMail", None)


def test_a_second_sale_to_the_same_stripe_customer_finds_the_customer(vendors: VendorFactory):
    shop = connect(vendors.create())
    price, _ = shop.mapped_price()
    first = shop.send(
        stripe_event("checkout.session.completed", checkout_session([(price, 1)], customer="cus_A"))
    )
    second = shop.send(
        stripe_event("checkout.session.completed", checkout_session([(price, 1)], customer="cus_A"))
    )
    orders = [shop.vendor.ok("GET", f"/orders/{a.json()['order_id']}") for a in (first, second)]
    assert orders[0]["id"] != orders[1]["id"]
    assert orders[0]["customer_id"] == orders[1]["customer_id"]
    found = shop.vendor.ok("GET", "/customers", params={"external_id": "cus_A"})["items"]
    assert len(found) == 1


def test_items_named_in_the_sessions_metadata_are_mapped_like_line_items(vendors: VendorFactory):
    shop = connect(vendors.create())
    price_a, sku_a = shop.mapped_price()
    price_b, sku_b = shop.mapped_price()
    session = checkout_session([(price_a, 2), (price_b, 1)], expanded=False)
    receipt = shop.send(stripe_event("checkout.session.completed", session)).json()
    order = shop.vendor.ok("GET", f"/orders/{receipt['order_id']}")
    assert sorted((line["sku"], line["quantity"]) for line in order["lines"]) == sorted(
        [(sku_a, 2), (sku_b, 1)]
    )


def test_a_product_id_can_be_mapped_instead_of_each_price(vendors: VendorFactory):
    shop = connect(vendors.create())
    sku = shop.vendor.template()["sku"]
    session = checkout_session([("price_unmapped_monthly", 1)])
    product = session["line_items"]["data"][0]["price"]["product"]
    shop.map(product, sku)
    receipt = shop.send(stripe_event("checkout.session.completed", session)).json()
    order = shop.vendor.ok("GET", f"/orders/{receipt['order_id']}")
    assert [line["sku"] for line in order["lines"]] == [sku]


def test_retries_and_replays_of_one_event_make_one_order(vendors: VendorFactory):
    shop = connect(vendors.create())
    price, _ = shop.mapped_price()
    body = stripe_event("checkout.session.completed", checkout_session([(price, 1)]))
    first = shop.send(body).json()
    again = shop.send(body).json()  # Stripe's retry: the same body, signed anew
    assert again["status"] == "replayed"
    assert again["order_id"] == first["order_id"]
    assert len(shop.vendor.ok("GET", "/orders")["items"]) == 1
    [event] = shop.vendor.ok("GET", "/shop-events")["items"]
    assert (event["status"], event["order_id"]) == ("processed", first["order_id"])


def test_ten_concurrent_copies_of_one_event_make_exactly_one_order(vendors: VendorFactory):
    shop = connect(vendors.create())
    price, _ = shop.mapped_price()
    body = stripe_event("checkout.session.completed", checkout_session([(price, 2)]))
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(lambda _: shop.send(body), range(10)))
    assert [a.status_code for a in answers] == [200] * 10, [a.text for a in answers]
    receipts = [a.json() for a in answers]
    assert sorted(r["status"] for r in receipts) == ["processed"] + ["replayed"] * 9
    assert {r["order_id"] for r in receipts} == {receipts[0]["order_id"]}
    orders = shop.vendor.ok("GET", "/orders")["items"]
    assert len(orders) == 1
    assert len(_licenses(shop.vendor, orders[0]["id"])) == 2
    assert len(shop.vendor.ok("GET", "/customers")["items"]) == 1


def test_a_wrong_signature_is_refused_and_changes_nothing(vendors: VendorFactory):
    shop = connect(vendors.create())
    price, _ = shop.mapped_price()
    body = stripe_event("checkout.session.completed", checkout_session([(price, 1)]))
    for header in (
        shop.header(body, secret="whsec_" + "wrong" * 6),
        shop.header(body.replace('"quantity": 1', '"quantity": 9')),
        "t=1,v1=00",
        "",
    ):
        answer = shop.send(body, header=header)
        assert answer.status_code == 401, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == "SHOP_SIGNATURE_INVALID"
    assert shop.vendor.ok("GET", "/orders")["items"] == []
    assert shop.vendor.ok("GET", "/shop-events")["items"] == []


def test_a_body_changed_after_signing_is_refused(vendors: VendorFactory):
    shop = connect(vendors.create())
    price, _ = shop.mapped_price()
    body = stripe_event("checkout.session.completed", checkout_session([(price, 1)]))
    header = shop.header(body)
    answer = shop.send(body.replace('"quantity": 1', '"quantity": 90'), header=header)
    assert answer.json()["code"] == "SHOP_SIGNATURE_INVALID"


def test_a_stale_signature_is_refused_as_a_replay(vendors: VendorFactory):
    shop = connect(vendors.create())
    price, _ = shop.mapped_price()
    body = stripe_event("checkout.session.completed", checkout_session([(price, 1)]))
    stale = shop.header(body, timestamp=int(time.time()) - 301)
    assert shop.send(body, header=stale).json()["code"] == "SHOP_SIGNATURE_INVALID"
    assert shop.vendor.ok("GET", "/orders")["items"] == []


def test_an_unmapped_price_is_refused_recorded_and_the_retry_after_mapping_succeeds(
    vendors: VendorFactory,
):
    shop = connect(vendors.create())
    body = stripe_event("checkout.session.completed", checkout_session([("price_new", 1)]))
    refused = shop.send(body)
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "SHOP_ITEM_UNMAPPED"
    assert "price_new" in refused.json()["detail"]
    [failed] = shop.vendor.ok("GET", "/shop-events", params={"status": "failed"})["items"]
    assert (failed["error_code"], failed["attempts"]) == ("SHOP_ITEM_UNMAPPED", 1)
    assert shop.vendor.ok("GET", "/orders")["items"] == []
    assert shop.send(body).status_code == 422  # Stripe retries; still unmapped
    shop.map("price_new", shop.vendor.template()["sku"])
    retried = shop.send(body)
    assert retried.status_code == 200 and retried.json()["outcome"] == "order_created"
    event = shop.vendor.ok("GET", f"/shop-events/{failed['id']}")
    assert (event["status"], event["attempts"], event["error_code"]) == ("processed", 3, None)


def test_a_session_without_items_or_metadata_is_refused_with_what_to_do(vendors: VendorFactory):
    shop = connect(vendors.create())
    session = checkout_session([("price_x", 1)], expanded=False)
    session["metadata"] = {}
    answer = shop.send(stripe_event("checkout.session.completed", session))
    assert answer.status_code == 422
    assert answer.json()["code"] == "SHOP_ITEMS_MISSING"
    assert "licentia_items" in answer.json()["detail"]


def test_an_unpaid_session_waits_for_its_async_payment(vendors: VendorFactory):
    shop = connect(vendors.create())
    price, _ = shop.mapped_price()
    session = checkout_session([(price, 1)], payment_status="unpaid")
    waiting = shop.send(stripe_event("checkout.session.completed", session))
    assert waiting.status_code == 200 and waiting.json()["status"] == "ignored"
    assert shop.vendor.ok("GET", "/orders")["items"] == []
    session["payment_status"] = "paid"
    paid = shop.send(stripe_event("checkout.session.async_payment_succeeded", session))
    assert paid.json()["outcome"] == "order_created"


def test_events_licentia_does_not_act_on_are_answered_200_and_ignored(vendors: VendorFactory):
    shop = connect(vendors.create())
    answer = shop.send(stripe_event("customer.created", {"id": "cus_X", "object": "customer"}))
    assert answer.status_code == 200 and answer.json()["status"] == "ignored"


def test_a_shop_not_connected_or_turned_off_refuses_its_events(vendors: VendorFactory):
    vendor = vendors.create()
    shop = connect(vendor)
    body = stripe_event("customer.created", {"id": "cus_X"})
    vendor.ok("PUT", "/shops/stripe", json={"enabled": False})
    assert shop.send(body).json()["code"] == "SHOP_NOT_CONNECTED"
    vendor.ok("PUT", "/shops/stripe", json={"enabled": True})
    assert shop.send(body).status_code == 200
    assert vendor.request("DELETE", "/shops/stripe").status_code == 204
    assert shop.send(body).status_code == 404


def test_a_subscription_renews_its_licenses_until_the_end_of_the_period_paid(
    vendors: VendorFactory,
):
    shop = connect(vendors.create())
    template = shop.vendor.template({"validity": {"kind": "days_from_issue", "days": 30}})
    price, _ = shop.mapped_price(template)
    subscription, customer = new_id("sub"), new_id("cus")
    session = checkout_session([(price, 2)], customer=customer, subscription=subscription)
    placed = shop.send(stripe_event("checkout.session.completed", session)).json()
    first_end = int((datetime.now(UTC) + timedelta(days=31)).timestamp())
    invoice = paid_invoice(subscription, customer, [(price, 2)], first_end)
    invoice["billing_reason"] = "subscription_create"
    first = shop.send(stripe_event("invoice.paid", invoice)).json()
    assert (first["order_id"], first["outcome"]) == (placed["order_id"], "renewed")
    next_end = first_end + 30 * 86400
    renewal = paid_invoice(subscription, customer, [(price, 2)], next_end)
    renewed = shop.send(stripe_event("invoice.paid", renewal)).json()
    assert (renewed["order_id"], renewed["outcome"]) == (placed["order_id"], "renewed")
    licenses = _licenses(shop.vendor, placed["order_id"])
    assert len(licenses) == 2  # renewing adds no licenses
    ends = {datetime.fromisoformat(lic["valid_until"]) for lic in licenses}
    assert ends == {datetime.fromtimestamp(next_end, UTC)}
    assert len(shop.vendor.ok("GET", "/orders")["items"]) == 1


def test_the_first_invoice_of_a_subscription_made_outside_checkout_places_its_order(
    vendors: VendorFactory,
):
    shop = connect(vendors.create())
    template = shop.vendor.template({"validity": {"kind": "days_from_issue", "days": 30}})
    price, _ = shop.mapped_price(template)
    end = int((datetime.now(UTC) + timedelta(days=40)).timestamp())
    invoice = paid_invoice(new_id("sub"), new_id("cus"), [(price, 1)], end)
    invoice["billing_reason"] = "subscription_create"
    receipt = shop.send(stripe_event("invoice.paid", invoice)).json()
    assert receipt["outcome"] == "order_created"
    [license_] = _licenses(shop.vendor, receipt["order_id"])
    assert datetime.fromisoformat(license_["valid_until"]) == datetime.fromtimestamp(end, UTC)


def test_a_full_refund_suspends_the_licenses_by_default(vendors: VendorFactory):
    shop = connect(vendors.create())
    price, _ = shop.mapped_price()
    session = checkout_session([(price, 2)])
    placed = shop.send(stripe_event("checkout.session.completed", session)).json()
    partial = refunded_charge(session["payment_intent"], full=False)
    assert shop.send(stripe_event("charge.refunded", partial)).json()["status"] == "ignored"
    assert {lic["state"] for lic in _licenses(shop.vendor, placed["order_id"])} == {"available"}
    refund = stripe_event("charge.refunded", refunded_charge(session["payment_intent"]))
    receipt = shop.send(refund).json()
    assert (receipt["outcome"], receipt["order_id"]) == ("licenses_suspended", placed["order_id"])
    assert {lic["state"] for lic in _licenses(shop.vendor, placed["order_id"])} == {"suspended"}
    assert shop.send(refund).json()["status"] == "replayed"


def test_a_vendor_can_have_a_refund_withdraw_the_licenses(vendors: VendorFactory):
    shop = connect(vendors.create(), refund_action="withdraw")
    price, _ = shop.mapped_price()
    session = checkout_session([(price, 1)])
    placed = shop.send(stripe_event("checkout.session.completed", session)).json()
    shop.send(stripe_event("charge.refunded", refunded_charge(session["payment_intent"])))
    assert {lic["state"] for lic in _licenses(shop.vendor, placed["order_id"])} == {"withdrawn"}


def test_a_cancelled_subscription_leaves_licenses_by_default_or_withdraws_them(
    vendors: VendorFactory,
):
    for action, state in (("none", "available"), ("withdraw", "withdrawn")):
        shop = connect(vendors.create(), cancel_action=action)
        price, _ = shop.mapped_price()
        subscription = new_id("sub")
        session = checkout_session([(price, 1)], subscription=subscription)
        placed = shop.send(stripe_event("checkout.session.completed", session)).json()
        deleted = {"id": subscription, "object": "subscription", "status": "canceled"}
        shop.send(stripe_event("customer.subscription.deleted", deleted))
        assert {lic["state"] for lic in _licenses(shop.vendor, placed["order_id"])} == {state}


def test_a_refund_of_a_sale_licentia_never_saw_changes_nothing(vendors: VendorFactory):
    shop = connect(vendors.create())
    answer = shop.send(stripe_event("charge.refunded", refunded_charge(new_id("pi"))))
    assert (answer.status_code, answer.json()["outcome"]) == (200, "no_order")


def test_what_a_shop_did_is_audited_as_the_shop(vendors: VendorFactory):
    shop = connect(vendors.create())
    price, _ = shop.mapped_price()
    shop.send(stripe_event("checkout.session.completed", checkout_session([(price, 1)])))
    events = shop.vendor.ok("GET", "/audit-events", params={"limit": 200})["items"]
    created = next(e for e in events if e["action"] == "order.created")
    assert (created["actor_type"], created["actor_id"]) == ("shop", "stripe")


# --- renewals of subscription licenses -------------------------------------------------


@dataclass
class Subscribed:
    """A Stripe subscription sold through Checkout: its order and its one license."""

    shop: Shop
    order_id: str
    license: dict[str, Any]
    price: str
    subscription: str
    customer: str

    def renewal(self, days: int = 30, event_id: str | None = None) -> str:
        """The signed body of the next period's ``invoice.paid`` (``days`` past the
        license's paid end)."""
        paid_until = datetime.fromisoformat(self.license["subscription"]["paid_until"])
        end = int((paid_until + timedelta(days=days)).timestamp())
        invoice = paid_invoice(self.subscription, self.customer, [(self.price, 1)], end)
        return stripe_event("invoice.paid", invoice, event_id)

    def cancellation(self, event_id: str | None = None) -> str:
        """The signed body of ``customer.subscription.deleted``: the subscription ended
        at the end of the period the license is paid to."""
        paid_until = datetime.fromisoformat(self.license["subscription"]["paid_until"])
        ended = deleted_subscription(self.subscription, self.customer, int(paid_until.timestamp()))
        return stripe_event("customer.subscription.deleted", ended, event_id)

    def now(self) -> dict[str, Any]:
        return dict(self.shop.vendor.ok("GET", f"/licenses/{self.license['id']}"))


def _subscribed(vendors: VendorFactory, **terms: Any) -> Subscribed:
    shop = connect(vendors.create())
    subscription_terms = {"period": "monthly", "grace_days": 7, **terms}
    template = shop.vendor.template({"subscription": subscription_terms})
    price, _ = shop.mapped_price(template)
    subscription, customer = new_id("sub"), new_id("cus")
    session = checkout_session([(price, 1)], customer=customer, subscription=subscription)
    placed = shop.send(stripe_event("checkout.session.completed", session)).json()
    [license_] = _licenses(shop.vendor, placed["order_id"])
    return Subscribed(shop, placed["order_id"], license_, price, subscription, customer)


def test_a_renewal_invoice_renews_the_subscription_through_its_use_case(vendors: VendorFactory):
    sold = _subscribed(vendors)
    event_id = new_id("evt")
    body = sold.renewal(30, event_id)
    end = datetime.fromtimestamp(
        json.loads(body)["data"]["object"]["lines"]["data"][0]["period"]["end"], UTC
    )

    receipt = sold.shop.send(body).json()

    assert (receipt["outcome"], receipt["order_id"]) == ("renewed", sold.order_id)
    renewed = sold.now()
    assert datetime.fromisoformat(renewed["subscription"]["paid_until"]) == end
    assert datetime.fromisoformat(renewed["valid_until"]) == end + timedelta(days=7)  # grace
    [event] = all_events(sold.shop.vendor, action="subscription.renewed")
    assert (event["actor_type"], event["actor_id"]) == ("shop", "stripe")
    assert event["after"]["renewal"]["source"] == "stripe"
    assert event["after"]["renewal"]["external_id"] == event_id
    assert all_events(sold.shop.vendor, action="license.extended") == []
    assert len(_licenses(sold.shop.vendor, sold.order_id)) == 1  # a renewal adds no license


def test_ten_concurrent_copies_of_a_renewal_renew_once(vendors: VendorFactory, live_server: str):
    sold = _subscribed(vendors)
    body = sold.renewal(30)

    answers = sold.shop.send_together(body, 10, live_server)

    assert [a.status_code for a in answers] == [200] * 10, [a.text for a in answers]
    assert sorted(a.json()["status"] for a in answers) == ["processed"] + ["replayed"] * 9
    assert {a.json()["outcome"] for a in answers} == {"renewed"}
    assert len(all_events(sold.shop.vendor, action="subscription.renewed")) == 1
    paid_before = datetime.fromisoformat(sold.license["subscription"]["paid_until"])
    paid_now = datetime.fromisoformat(sold.now()["subscription"]["paid_until"])
    assert paid_now - paid_before < timedelta(days=31)  # one period, not ten
    assert sold.shop.send(body).json()["status"] == "replayed"  # and the shop's retry later


def test_a_renewal_of_a_subscription_licentia_has_no_order_for_is_logged_and_answered_200(
    vendors: VendorFactory,
):
    shop = connect(vendors.create())
    price, _ = shop.mapped_price()
    end = int((datetime.now(UTC) + timedelta(days=30)).timestamp())
    invoice = paid_invoice(new_id("sub"), new_id("cus"), [(price, 1)], end)

    answer = shop.send(stripe_event("invoice.paid", invoice))

    assert answer.status_code == 200, answer.text
    assert (answer.json()["status"], answer.json()["outcome"]) == ("processed", "no_order")
    assert shop.vendor.ok("GET", "/orders")["items"] == []
    [event] = shop.vendor.ok("GET", "/shop-events", params={"provider": "stripe"})["items"]
    assert (event["status"], event["outcome"], event["order_id"]) == ("processed", "no_order", None)


def test_a_subscription_cancelled_in_licentia_is_not_renewed_by_the_shop(vendors: VendorFactory):
    sold = _subscribed(vendors)
    sold.shop.vendor.ok("POST", f"/licenses/{sold.license['id']}/subscription/actions/cancel")

    receipt = sold.shop.send(sold.renewal(30)).json()

    assert (receipt["status"], receipt["outcome"]) == ("processed", "unchanged")
    assert sold.now()["subscription"]["paid_until"] == sold.license["subscription"]["paid_until"]


# --- cancellations of subscription licenses --------------------------------------------


def renew_all_due(database: Database, now: datetime) -> None:
    """Licentia's automatic renewals up to ``now``, every round of them (the shared
    database holds other tests' subscriptions too)."""
    while run_write(database, lambda session: renew_due(session, now)):
        pass


def test_a_subscription_ended_in_stripe_is_cancelled_and_not_renewed_automatically(
    vendors: VendorFactory, database: Database
):
    sold = _subscribed(vendors, automatic=True)
    paid_until = sold.license["subscription"]["paid_until"]
    event_id = new_id("evt")

    receipt = sold.shop.send(sold.cancellation(event_id)).json()

    assert (receipt["status"], receipt["outcome"]) == ("processed", "subscription_cancelled")
    assert receipt["order_id"] == sold.order_id
    cancelled = sold.now()
    assert cancelled["state"] == "available"  # the cancel action is "none"
    assert cancelled["subscription"]["status"] == "cancelled"
    assert cancelled["subscription"]["next_renewal_at"] is None
    assert cancelled["subscription"]["paid_until"] == paid_until
    assert cancelled["valid_until"] == paid_until  # the grace is gone: no payment will come
    [event] = all_events(sold.shop.vendor, action="subscription.cancelled")
    assert (event["actor_type"], event["actor_id"]) == ("shop", "stripe")
    assert event["after"]["cancellation"] == {"source": "stripe", "external_id": event_id}

    renew_all_due(database, datetime.fromisoformat(paid_until) + timedelta(days=1))

    assert sold.now()["subscription"]["paid_until"] == paid_until
    assert all_events(sold.shop.vendor, action="subscription.renewed") == []


def test_a_payment_after_stripe_ended_the_subscription_renews_nothing(vendors: VendorFactory):
    sold = _subscribed(vendors)
    sold.shop.send(sold.cancellation())

    late = sold.shop.send(sold.renewal(30)).json()  # Stripe's events come in any order

    assert (late["status"], late["outcome"]) == ("processed", "unchanged")
    assert sold.now()["subscription"]["paid_until"] == sold.license["subscription"]["paid_until"]
    assert sold.now()["subscription"]["status"] == "cancelled"


def test_ten_concurrent_copies_of_a_cancellation_cancel_once_and_send_one_event(
    vendors: VendorFactory, database: Database, live_server: str
):
    sold = _subscribed(vendors)
    body = sold.cancellation()

    answers = sold.shop.send_together(body, 10, live_server)

    assert [a.status_code for a in answers] == [200] * 10, [a.text for a in answers]
    assert sorted(a.json()["status"] for a in answers) == ["processed"] + ["replayed"] * 9
    assert {a.json()["outcome"] for a in answers} == {"subscription_cancelled"}
    assert events_of(database, sold.license["id"], "subscription.cancelled") == 1
    assert len(all_events(sold.shop.vendor, action="subscription.cancelled")) == 1
    assert sold.now()["version"] == sold.license["version"] + 1
    assert sold.shop.send(body).json()["status"] == "replayed"  # and the shop's retry later


def test_a_cancel_action_still_applies_to_a_cancelled_subscriptions_licenses(
    vendors: VendorFactory,
):
    sold = _subscribed(vendors)
    sold.shop.vendor.ok("PUT", "/shops/stripe", json={"cancel_action": "suspend"})

    receipt = sold.shop.send(sold.cancellation()).json()

    assert receipt["outcome"] == "licenses_suspended"
    after = sold.now()
    assert (after["state"], after["subscription"]["status"]) == ("suspended", "cancelled")
    # a cancellation of a subscription the license is already cancelled for changes nothing
    again = sold.shop.send(sold.cancellation()).json()
    assert (again["status"], again["outcome"]) == ("processed", "licenses_suspended")
    assert len(all_events(sold.shop.vendor, action="subscription.cancelled")) == 1
