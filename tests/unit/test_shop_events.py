"""Reading the shops' events into commands: what each event means, whatever shape of
the provider's API version it comes in."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from licentia.domain.errors import ValidationError
from licentia.domain.shops import Ignored, Item, Revocation, RevocationReason, Sale, parse_item_list
from licentia.server.shops import paddle_events, stripe_events
from tests.support.shops import (
    checkout_session,
    paddle_event,
    paddle_refund,
    paddle_transaction,
    paid_invoice,
    stripe_event,
)


def stripe(event_type: str, obj: dict) -> object:
    return stripe_events.read_event(json.loads(stripe_event(event_type, obj))).command


def test_a_checkout_sale_names_its_prices_then_products_and_its_references():
    session = checkout_session([("price_a", 2)], customer="cus_1")
    sale = stripe("checkout.session.completed", session)
    assert isinstance(sale, Sale)
    product = session["line_items"]["data"][0]["price"]["product"]
    assert sale.items == (Item(("price_a", product), 2),)
    assert sale.order_ref == session["id"]
    assert sale.buyer is not None and sale.buyer.external_id == "cus_1"
    assert set(sale.references) == {session["id"], session["payment_intent"]}


def test_a_subscription_checkout_is_the_subscriptions_order():
    session = checkout_session([("price_a", 1)], subscription="sub_9")
    sale = stripe("checkout.session.completed", session)
    assert isinstance(sale, Sale) and sale.order_ref == "sub_9"


def test_an_invoice_of_the_2025_api_names_its_price_under_pricing():
    invoice = paid_invoice("sub_1", "cus_1", [("price_a", 3)], 2_000_000_000)
    del invoice["subscription"]
    invoice["parent"] = {"subscription_details": {"subscription": "sub_1"}}
    line = invoice["lines"]["data"][0]
    del line["price"]
    line["pricing"] = {"price_details": {"price": "price_a", "product": "prod_a"}}
    sale = stripe("invoice.paid", invoice)
    assert isinstance(sale, Sale)
    assert (sale.order_ref, sale.items) == ("sub_1", (Item(("price_a", "prod_a"), 3),))
    assert sale.valid_until == datetime.fromtimestamp(2_000_000_000, UTC)


def test_an_invoice_outside_a_subscription_is_left_to_checkout():
    invoice = paid_invoice("sub_1", "cus_1", [("price_a", 1)], 2_000_000_000)
    invoice["subscription"] = None
    assert isinstance(stripe("invoice.paid", invoice), Ignored)


def test_refunds_and_cancellations():
    charge = {"id": "ch_1", "payment_intent": "pi_1", "refunded": True}
    assert stripe("charge.refunded", charge) == Revocation(
        RevocationReason.REFUND, ("pi_1", "ch_1")
    )
    assert isinstance(stripe("charge.refunded", charge | {"refunded": False}), Ignored)
    assert stripe("customer.subscription.deleted", {"id": "sub_1"}) == Revocation(
        RevocationReason.CANCEL, ("sub_1",)
    )


def test_a_stripe_event_without_its_object_is_invalid():
    with pytest.raises(ValidationError) as raised:
        stripe_events.read_event({"id": "evt_1", "type": "invoice.paid"})
    assert raised.value.code == "SHOP_EVENT_INVALID"


def test_paddle_transactions_of_a_subscription_go_to_its_order_until_the_period_ends():
    data = paddle_transaction([("pri_a", 1)], subscription="sub_1", ends_at="2027-01-03T20:00:00Z")
    event = paddle_events.read_event(json.loads(paddle_event("transaction.completed", data)))
    sale = event.command
    assert isinstance(sale, Sale)
    assert (sale.order_ref, sale.valid_until) == ("sub_1", datetime(2027, 1, 3, 20, tzinfo=UTC))
    assert set(sale.references) == {data["id"], "sub_1"}


@pytest.mark.parametrize(
    ("reason", "renewal"),
    [("subscription_cycle", True), ("subscription_create", False), ("subscription_update", False)],
)
def test_only_a_subscriptions_next_period_is_a_stripe_renewal(reason: str, renewal: bool):
    invoice = paid_invoice("sub_1", "cus_1", [("price_a", 1)], 2_000_000_000) | {
        "billing_reason": reason
    }
    sale = stripe("invoice.paid", invoice)
    assert isinstance(sale, Sale) and (sale.order_ref, sale.renewal) == ("sub_1", renewal)


@pytest.mark.parametrize(
    ("origin", "subscription", "renewal"),
    [
        ("subscription_recurring", "sub_1", True),
        ("web", "sub_1", False),
        ("subscription_update", "sub_1", False),
        ("subscription_recurring", None, False),
    ],
)
def test_only_a_subscriptions_recurring_transaction_is_a_paddle_renewal(
    origin: str, subscription: str | None, renewal: bool
):
    data = paddle_transaction([("pri_a", 1)], subscription=subscription) | {"origin": origin}
    sale = paddle_events.read_event(json.loads(paddle_event("transaction.completed", data))).command
    assert isinstance(sale, Sale) and sale.renewal is renewal


def test_only_an_approved_full_paddle_refund_revokes():
    def command(data: dict) -> object:
        return paddle_events.read_event(
            json.loads(paddle_event("adjustment.updated", data))
        ).command

    assert command(paddle_refund("txn_1")) == Revocation(RevocationReason.REFUND, ("txn_1",))
    assert isinstance(command(paddle_refund("txn_1", partial=True)), Ignored)
    assert isinstance(command(paddle_refund("txn_1") | {"action": "credit"}), Ignored)


@pytest.mark.parametrize(
    ("text", "items"),
    [
        ("price_a", [Item(("price_a",), 1)]),
        ("price_a:2, price_b", [Item(("price_a",), 2), Item(("price_b",), 1)]),
    ],
)
def test_metadata_items(text: str, items: list[Item]):
    assert parse_item_list(text) == items


@pytest.mark.parametrize("text", ["", "price_a:0", "price_a:x", ",", ":2"])
def test_bad_metadata_items_are_refused(text: str):
    with pytest.raises(ValueError):
        parse_item_list(text)
