"""``GET /metrics`` as an operator's Prometheus scrapes it and a Grafana panel reads it:
after real API calls the series named in docs/operations.md moved by what was done,
with the labels a dashboard groups by; and nobody without the token reads them.

The counters belong to the process (every app of the test session counts into them),
so each test reads them before and after what it does and compares."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from licentia.server.api import create_app
from licentia.server.db.engine import Database
from licentia.server.keys.master import MasterKey
from licentia.server.settings import Settings
from tests.factories import VendorFactory, VendorHandle
from tests.integration.device_messages import activate_device
from tests.integration.test_cloud import CloudUser, _container

TOKEN = "scrape-token-of-the-operator-0123"
Labels = dict[str, str]


@pytest.fixture(scope="module")
def scraped(settings: Settings, database: Database, master: MasterKey) -> Iterator[TestClient]:
    """An app whose /metrics answers the operator's token."""
    app = create_app(
        settings.model_copy(update={"metrics_token": SecretStr(TOKEN)}),
        database=database,
        master=master,
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def vendor(scraped: TestClient, database: Database, master: MasterKey) -> VendorHandle:
    return VendorFactory(database, master, scraped).create()


def scrape(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_are_not_public_without_the_operators_token(
    client: TestClient, scraped: TestClient
):
    assert client.get("/metrics").status_code == 404  # no token set: no such path
    refused = scraped.get("/metrics")
    assert refused.status_code == 401 and refused.json()["code"] == "UNAUTHENTICATED"
    wrong = scraped.get("/metrics", headers={"Authorization": "Bearer not-the-token-at-all"})
    assert wrong.status_code == 401
    assert "licentia_http_requests_total" not in wrong.text


def test_requests_are_counted_by_route_template_and_status_never_by_path(
    scraped: TestClient, vendor: VendorHandle
):
    license_id = vendor.license()["id"]
    before = scrape(scraped)
    for _ in range(3):
        assert vendor.get(f"/licenses/{license_id}").status_code == 200  # the hot read
    assert vendor.get("/licenses/no-such-license").status_code == 404
    assert vendor.get("/products").status_code == 200  # a route FastAPI answers
    assert scraped.get("/no/such/path").status_code == 404
    after = scrape(scraped)

    route = "/api/v1/licenses/{license_id}"
    counted = "licentia_http_requests_total"
    ok = {"method": "GET", "route": route, "status": "200"}
    assert value(after, counted, **ok) - value(before, counted, **ok) == 3
    missing = {"method": "GET", "route": route, "status": "404"}
    assert value(after, counted, **missing) - value(before, counted, **missing) == 1
    products = {"method": "GET", "route": "/api/v1/products", "status": "200"}
    assert value(after, counted, **products) - value(before, counted, **products) == 1
    unrouted = {"method": "GET", "route": "unrouted", "status": "404"}
    assert value(after, counted, **unrouted) - value(before, counted, **unrouted) == 1
    timed = "licentia_http_request_duration_seconds_count"
    assert (
        value(after, timed, method="GET", route=route)
        - value(before, timed, method="GET", route=route)
        == 4
    )
    assert not any(license_id in str(labels) for _, labels in after)


def test_seats_denials_units_and_activations_are_counted_per_product(
    scraped: TestClient, vendor: VendorHandle
):
    before = scrape(scraped)
    credential, product, _ = _container(vendor, delivery="seat_pool", seats=1)
    user = CloudUser(vendor, credential)
    assert user.checkout(product, "ann").status_code == 201
    assert user.checkout(product, "ann").status_code in (200, 201)  # her own seat back
    refused = user.checkout(product, "bob")
    assert refused.status_code == 409 and refused.json()["code"] == "NO_SEAT_AVAILABLE"
    units_credential, units_product, _ = _container(vendor, delivery="cloud", units=100)
    counting = CloudUser(vendor, units_credential)
    assert counting.consume(units_product, 7, "job-1").status_code == 200
    assert counting.consume(units_product, 7, "job-1").status_code == 200  # a replay
    assert counting.consume(units_product, 5, "job-2").status_code == 200
    offline = vendor.product()
    template = vendor.template(product=offline)
    activate_device(vendor, vendor.order([{"sku": template["sku"], "quantity": 1}])["ticket_code"])
    after = scrape(scraped)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    who = {"vendor": vendor.slug, "product": product}
    assert moved("licentia_seat_checkouts_total", **who) == 1
    assert moved("licentia_seat_denials_total", **who, code="NO_SEAT_AVAILABLE") == 1
    assert value(after, "licentia_seats", **who) == 1
    assert value(after, "licentia_seats_in_use", **who) == 1
    units = {"vendor": vendor.slug, "product": units_product}
    assert moved("licentia_units_consumed_total", **units) == 12
    assert moved("licentia_activations_total", **who, delivery="seat_pool") == 1
    assert moved("licentia_activations_total", **units, delivery="cloud") == 1
    device = {"vendor": vendor.slug, "product": offline["code"], "delivery": "device"}
    assert moved("licentia_activations_total", **device) == 1


def test_every_answer_carries_a_request_id_of_its_own(scraped: TestClient, vendor: VendorHandle):
    first, second = vendor.get("/products"), vendor.get("/no-such-route")
    ids = {first.headers["X-Request-ID"], second.headers["X-Request-ID"]}
    assert len(ids) == 2 and all(len(i) == 24 for i in ids)
    # A client that is not a trusted proxy cannot name its request: logs would lie.
    named = vendor.get("/products", headers={"X-Request-ID": "chosen-by-the-client"})
    assert named.headers["X-Request-ID"] != "chosen-by-the-client"
