"""Shop events built and signed as Stripe and Paddle build and sign them.

Stripe's header comes from the ``stripe`` package's own signing helper
(``t=<time>,v1=<HMAC-SHA256(secret, "<time>.<body>")>``); Paddle's from its SDK's
HMAC (``ts=<time>;h1=<HMAC-SHA256(secret, "<time>:<body>")>``). The bodies follow
the shape of the providers' documented events, with only the fields Licentia reads
and a few it does not.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import stripe
from paddle_billing.Notifications.PaddleSignature import PaddleSignature

if TYPE_CHECKING:  # the benchmarks use the events and signatures alone
    from tests.factories import VendorHandle

API = "/api/v1"
STRIPE_SECRET = "whsec_" + "test" * 8
PADDLE_SECRET = "pdl_ntfset_01test_" + "x" * 24


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def stripe_header(body: str, secret: str = STRIPE_SECRET, timestamp: int | None = None) -> str:
    return str(
        stripe.WebhookSignature.generate_signature_header(
            body, secret, timestamp=timestamp or int(time.time())
        )
    )


def paddle_header(body: str, secret: str = PADDLE_SECRET, timestamp: int | None = None) -> str:
    ts = timestamp or int(time.time())
    digest = PaddleSignature.calculate_hmac(secret, f"{ts}:{body}".encode()).hexdigest()
    return f"ts={ts};h1={digest}"


# --- Stripe ----------------------------------------------------------------------------


def stripe_event(event_type: str, obj: dict[str, Any], event_id: str | None = None) -> str:
    return json.dumps(
        {
            "id": event_id or new_id("evt"),
            "object": "event",
            "api_version": "2024-06-20",
            "created": int(time.time()),
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
            "data": {"object": obj},
        }
    )


def checkout_session(
    items: list[tuple[str, int]],
    *,
    customer: str | None = None,
    expanded: bool = True,
    subscription: str | None = None,
    payment_status: str = "paid",
    email: str = "buyer@example.test",
) -> dict[str, Any]:
    """A completed Checkout Session; its items as expanded ``line_items`` or, with
    ``expanded=False``, in the metadata ``licentia_items``."""
    session: dict[str, Any] = {
        "id": new_id("cs_test"),
        "object": "checkout.session",
        "mode": "subscription" if subscription else "payment",
        "status": "complete",
        "payment_status": payment_status,
        "customer": customer if customer is not None else new_id("cus"),
        "customer_details": {"email": email, "name": "Jane Buyer"},
        "payment_intent": None if subscription else new_id("pi"),
        "subscription": subscription,
        "metadata": {},
        "amount_total": 4900,
        "currency": "eur",
    }
    if expanded:
        session["line_items"] = {
            "object": "list",
            "data": [
                {
                    "id": new_id("li"),
                    "object": "item",
                    "quantity": quantity,
                    "price": {"id": price, "object": "price", "product": new_id("prod")},
                }
                for price, quantity in items
            ],
            "has_more": False,
        }
    else:
        listed = ",".join(f"{price}:{quantity}" for price, quantity in items)
        session["metadata"] = {"licentia_items": listed}
    return session


def paid_invoice(
    subscription: str, customer: str, items: list[tuple[str, int]], period_end: int
) -> dict[str, Any]:
    return {
        "id": new_id("in"),
        "object": "invoice",
        "billing_reason": "subscription_cycle",
        "customer": customer,
        "customer_email": "buyer@example.test",
        "customer_name": "Jane Buyer",
        "subscription": subscription,
        "payment_intent": new_id("pi"),
        "charge": new_id("ch"),
        "status": "paid",
        "lines": {
            "object": "list",
            "data": [
                {
                    "id": new_id("il"),
                    "object": "line_item",
                    "quantity": quantity,
                    "price": {"id": price, "object": "price", "product": new_id("prod")},
                    "period": {"start": period_end - 30 * 86400, "end": period_end},
                }
                for price, quantity in items
            ],
        },
    }


def deleted_subscription(subscription: str, customer: str, period_end: int) -> dict[str, Any]:
    """The subscription of ``customer.subscription.deleted``: ended now, at the end of
    the period it was paid to (``cancel_at_period_end``), as Stripe sends it."""
    now = int(time.time())
    return {
        "id": subscription,
        "object": "subscription",
        "status": "canceled",
        "customer": customer,
        "cancel_at_period_end": True,
        "canceled_at": now - 86400,
        "ended_at": now,
        "cancellation_details": {"reason": "cancellation_requested", "feedback": None},
        "current_period_end": period_end,
        "items": {"object": "list", "data": []},
    }


def refunded_charge(payment_intent: str, *, full: bool = True) -> dict[str, Any]:
    return {
        "id": new_id("ch"),
        "object": "charge",
        "payment_intent": payment_intent,
        "amount": 4900,
        "amount_refunded": 4900 if full else 900,
        "refunded": full,
    }


# --- Paddle ----------------------------------------------------------------------------


def paddle_event(event_type: str, data: dict[str, Any], event_id: str | None = None) -> str:
    return json.dumps(
        {
            "event_id": event_id or new_id("evt"),
            "event_type": event_type,
            "occurred_at": "2026-12-03T20:00:00.000000Z",
            "notification_id": new_id("ntf"),
            "data": data,
        }
    )


def paddle_transaction(
    items: list[tuple[str, int]],
    *,
    customer: str | None = None,
    subscription: str | None = None,
    ends_at: str | None = None,
) -> dict[str, Any]:
    return {
        "id": new_id("txn"),
        "status": "completed",
        "customer_id": customer or new_id("ctm"),
        "subscription_id": subscription,
        "origin": "web",
        "currency_code": "EUR",
        "billing_period": (
            {"starts_at": "2026-12-03T20:00:00Z", "ends_at": ends_at} if ends_at else None
        ),
        "items": [
            {"price": {"id": price, "product_id": new_id("pro")}, "quantity": quantity}
            for price, quantity in items
        ],
    }


def paddle_canceled_subscription(subscription: str, customer: str) -> dict[str, Any]:
    """The subscription of ``subscription.canceled``: Paddle sends it when the
    cancellation takes effect (a scheduled one at the end of the billing period)."""
    return {
        "id": subscription,
        "status": "canceled",
        "customer_id": customer,
        "canceled_at": "2026-12-03T20:00:00Z",
        "current_billing_period": None,
        "next_billed_at": None,
        "scheduled_change": None,
        "items": [],
    }


def paddle_refund(transaction: str, *, partial: bool = False) -> dict[str, Any]:
    return {
        "id": new_id("adj"),
        "action": "refund",
        "transaction_id": transaction,
        "subscription_id": None,
        "customer_id": new_id("ctm"),
        "reason": "asked for it",
        "status": "approved",
        "items": [{"item_id": new_id("txnitm"), "type": "partial" if partial else "full"}],
    }


# --- a vendor's shop -------------------------------------------------------------------


@dataclass
class Shop:
    """A vendor with a connected shop, and the means to send it events."""

    vendor: VendorHandle
    provider: str
    secret: str

    @property
    def url(self) -> str:
        return f"{API}/vendors/{self.vendor.slug}/shops/{self.provider}/events"

    def header(self, body: str, *, secret: str | None = None, timestamp: int | None = None) -> str:
        sign = stripe_header if self.provider == "stripe" else paddle_header
        return sign(body, secret or self.secret, timestamp)

    def send(self, body: str, *, header: str | None = None) -> Any:
        name = "Stripe-Signature" if self.provider == "stripe" else "Paddle-Signature"
        return self.vendor.client.post(
            self.url,
            content=body,
            headers={
                "Content-Type": "application/json",
                name: header if header is not None else self.header(body),
            },
        )

    def send_together(self, body: str, copies: int, base_url: str) -> list[httpx.Response]:
        """``copies`` of one signed event to the server at ``base_url`` at the same
        moment, each on its own connection, as a shop's retries race its replays."""
        name = "Stripe-Signature" if self.provider == "stripe" else "Paddle-Signature"
        headers = {"Content-Type": "application/json", name: self.header(body)}
        together = threading.Barrier(copies, timeout=30)

        def send(_: int) -> httpx.Response:
            with httpx.Client(base_url=base_url, timeout=60) as http:
                together.wait()
                return http.post(self.url, content=body, headers=headers)

        with ThreadPoolExecutor(max_workers=copies) as pool:
            return list(pool.map(send, range(copies)))

    def map(self, provider_ref: str, sku: str) -> dict[str, Any]:
        body = {"provider": self.provider, "provider_ref": provider_ref, "sku": sku}
        return dict(self.vendor.ok("POST", "/shop-mappings", json=body))

    def mapped_price(self, template: dict[str, Any] | None = None) -> tuple[str, str]:
        """A new price id mapped to a new template's SKU (or ``template``'s)."""
        sku = (template or self.vendor.template())["sku"]
        price = new_id("price" if self.provider == "stripe" else "pri")
        self.map(price, sku)
        return price, sku


def connect(vendor: VendorHandle, provider: str = "stripe", **settings: Any) -> Shop:
    secret = STRIPE_SECRET if provider == "stripe" else PADDLE_SECRET
    vendor.ok("PUT", f"/shops/{provider}", json={"signing_secret": secret, **settings})
    return Shop(vendor, provider, secret)
