"""Webhooks go only where the operator allows (docs/security.md, "Webhook targets"):
an endpoint naming a private address is refused when it is made or changed, and a
delivery checks the addresses its receiver's name resolves to, connects to the one it
checked, and follows no redirect.

The shared app of the tests allows plain http to 127.0.0.0/8 (its receivers); these
tests build the production rules beside it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from licentia.domain.webhook_targets import TargetPolicy
from licentia.server.api import create_app
from licentia.server.webhooks.delivery import Deliverer
from licentia.server.webhooks.egress import delivery_client, resolve
from tests.factories import VendorHandle
from tests.support.webhook_receiver import WebhookReceiver


@pytest.fixture(scope="module")
def strict_client(settings, database, master) -> Iterator[TestClient]:
    production = settings.model_copy(
        update={"webhook_allow_http": False, "webhook_allowed_networks": ""}
    )
    app = create_app(production, database=database, master=master)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    started = WebhookReceiver().start()
    yield started
    started.stop()


def deliver_with(database, master, policy: TargetPolicy, resolver: Any = None) -> None:
    extra = {} if resolver is None else {"resolver": resolver}
    with delivery_client(policy, timeout=10, **extra) as http:
        Deliverer(database, master, http).deliver_due()


def suspensions_to(url: str) -> dict[str, Any]:
    return {"url": url, "event_types": ["license.suspended"]}


def suspended_license(vendor: VendorHandle) -> None:
    template = vendor.template()
    order = vendor.order([{"sku": template["sku"], "quantity": 1}])
    (license_id,) = vendor.ok("GET", f"/tickets/{order['ticket_id']}")["license_ids"]
    vendor.ok("POST", f"/licenses/{license_id}/actions/suspend", json={})


def only_attempt(vendor: VendorHandle, endpoint_id: str) -> dict[str, Any]:
    (delivery,) = vendor.ok("GET", f"/webhook-endpoints/{endpoint_id}/deliveries")["items"]
    assert delivery["status"] == "pending"
    (attempt,) = delivery["attempts"]
    return dict(attempt)


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.8/hooks",  # private
        "https://127.0.0.1:8443/hooks",  # loopback
        "https://localhost/hooks",  # a name that is always loopback
        "https://169.254.169.254/latest/meta-data/",  # the cloud's metadata service
        "https://169.254.3.4/hooks",  # link-local
        "https://224.0.0.251/hooks",  # multicast
        "https://240.1.2.3/hooks",  # reserved
        "https://[fd00::5]/hooks",  # unique-local IPv6
        "https://[::ffff:192.168.0.1]/hooks",  # IPv4-mapped
        "https://0x7f000001/hooks",  # loopback, written as a number
        "http://erp.example/hooks",  # plain http
    ],
)
def test_an_endpoint_naming_a_forbidden_receiver_is_refused(vendors, strict_client, url):
    vendor = dataclasses.replace(vendors.create(), client=strict_client)
    response = vendor.post("/webhook-endpoints", json={"url": url})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "WEBHOOK_URL_FORBIDDEN"
    assert vendor.ok("GET", "/webhook-endpoints")["items"] == []


def test_an_endpoint_cannot_be_moved_to_a_forbidden_receiver(vendors, strict_client):
    vendor = dataclasses.replace(vendors.create(), client=strict_client)
    endpoint = vendor.ok("POST", "/webhook-endpoints", json={"url": "https://erp.example/hooks"})
    moved = vendor.request(
        "PATCH", f"/webhook-endpoints/{endpoint['id']}", json={"url": "https://10.9.8.7/hooks"}
    )
    assert moved.status_code == 422 and moved.json()["code"] == "WEBHOOK_URL_FORBIDDEN"
    shown = vendor.ok("GET", f"/webhook-endpoints/{endpoint['id']}")
    assert shown["url"] == "https://erp.example/hooks"


def test_a_name_resolving_to_loopback_is_refused_when_delivering(
    vendors, receiver, database, master
):
    vendor = vendors.create()  # the tests' rules: loopback allowed when it is made
    url = f"http://localhost:{receiver.port}/hooks"
    endpoint = vendor.ok("POST", "/webhook-endpoints", json=suspensions_to(url))
    receiver.secrets.append(endpoint["secret"])
    suspended_license(vendor)

    deliver_with(database, master, TargetPolicy(allow_http=True))  # no private network
    assert receiver.received == [] and receiver.refused == 0  # nothing reached it
    attempt = only_attempt(vendor, endpoint["id"])
    assert attempt["status_code"] is None
    assert "localhost refused" in attempt["error"] and "(loopback)" in attempt["error"]


def test_plain_http_is_refused_when_delivering_unless_allowed(vendors, receiver, database, master):
    vendor = vendors.create()
    endpoint = vendor.ok("POST", "/webhook-endpoints", json=suspensions_to(receiver.url))
    receiver.secrets.append(endpoint["secret"])
    suspended_license(vendor)
    loopback = TargetPolicy.of(allow_http=False, networks=["127.0.0.0/8"])
    deliver_with(database, master, loopback)
    assert receiver.received == []
    assert "http is not allowed" in only_attempt(vendor, endpoint["id"])["error"]


def test_the_connection_goes_to_the_address_that_was_checked(vendors, receiver, database, master):
    """DNS rebinding: a name that answers a permitted address first and a forbidden one
    after. The delivery resolves once and connects to what it checked."""
    answers = iter([["127.0.0.1"], ["10.0.0.1"], ["10.0.0.1"]])
    asked: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        if host != "rebind.example":  # another test's receiver, left in the database
            return resolve(host, port)
        asked.append(host)
        return next(answers)

    vendor = vendors.create()
    url = f"http://rebind.example:{receiver.port}/hooks"
    endpoint = vendor.ok("POST", "/webhook-endpoints", json=suspensions_to(url))
    receiver.secrets.append(endpoint["secret"])
    suspended_license(vendor)
    only_loopback = TargetPolicy.of(allow_http=True, networks=["127.0.0.1/32"])
    deliver_with(database, master, only_loopback, rebinding)
    assert asked == ["rebind.example"]
    assert receiver.types() == ["license.suspended"]


def test_a_redirect_is_not_followed(vendors, receiver, database, master, settings):
    target = WebhookReceiver().start()
    try:
        vendor = vendors.create()
        endpoint = vendor.ok("POST", "/webhook-endpoints", json=suspensions_to(receiver.url))
        receiver.secrets.append(endpoint["secret"])
        target.secrets.append(endpoint["secret"])
        receiver.redirect_to = target.url
        suspended_license(vendor)
        deliver_with(database, master, settings.webhook_targets)
    finally:
        target.stop()
    assert target.received == []
    attempt = only_attempt(vendor, endpoint["id"])
    assert (attempt["status_code"], attempt["error"]) == (307, None)
