"""The console's dashboard: today's activations, devices, seats and denials, counters
running low and top customers, as charts that carry their numbers as text."""

from __future__ import annotations

import re

from fastapi import FastAPI

from licentia.server.web.charts import bar_chart
from tests.factories import VendorFactory, VendorHandle
from tests.integration.device_messages import activate_device
from tests.integration.test_cloud import CloudUser
from tests.integration.web.staff import console


def cloud_user(vendor: VendorHandle, **options: object) -> tuple[CloudUser, str]:
    """A device registered to a container holding one license of a new template."""
    template = vendor.template(options)
    order = vendor.order([{"sku": template["sku"], "quantity": 1}])
    redeemed = vendor.client.post(
        f"/api/v1/vendors/{vendor.slug}/cloud/redeem", json={"ticket": order["ticket_code"]}
    )
    assert redeemed.status_code == 201, redeemed.text
    product = vendor.ok("GET", f"/licenses/{redeemed.json()['license_ids'][0]}")["product_code"]
    return CloudUser(vendor, redeemed.json()["credential"]), product


def figure(html: str, label: str) -> int:
    found = re.search(rf'<span class="figure">(\d+)</span> {label}', html)
    assert found, label
    return int(found.group(1))


def test_the_dashboard_counts_what_happened_today(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    customer = vendor.ok("POST", "/customers", json={"name": "Busy Customer"})
    template = vendor.template()
    order = vendor.order([{"sku": template["sku"], "quantity": 2}], customer_id=customer["id"])
    activate_device(vendor, order["ticket_code"])
    activate_device(vendor, order["ticket_code"])
    seats, seat_product = cloud_user(vendor, delivery="seat_pool", seats=1)
    assert seats.checkout(seat_product, "ann").status_code == 201
    assert seats.checkout(seat_product, "bob").status_code == 409  # a denial
    units, unit_product = cloud_user(vendor, delivery="cloud", units=100)
    assert units.consume(unit_product, 95, "k1").status_code == 200
    html = console(app, vendor).get("/console/").text
    assert figure(html, "activations") == 4  # two on devices, two into cloud containers
    assert figure(html, "active devices") == 2
    assert figure(html, "seats in use now") == 1
    assert figure(html, "seat denials") == 1
    assert "5 / 100" in html  # the counter running low
    assert re.search(r"Busy Customer</a></td><td[^>]*>2</td><td[^>]*>2</td>", html)
    assert 'class="value">4</text>' in html  # today's bar says its number


def test_another_vendors_activity_is_not_counted(app: FastAPI, vendors: VendorFactory):
    mine, theirs = vendors.create(), vendors.create()
    activate_device(theirs, theirs.order()["ticket_code"])
    html = console(app, mine).get("/console/").text
    assert figure(html, "activations") == 0 and figure(html, "active devices") == 0


def test_a_bar_chart_scales_to_a_round_top_and_labels_every_bar_with_its_value():
    chart = bar_chart([("1", 0), ("2", 7), ("3", 3)])
    assert [tick.value for tick in chart.ticks] == [0, 2, 4, 6, 8]
    tallest = chart.bars[1]
    assert tallest.value == 7 and tallest.height > chart.bars[2].height > chart.bars[0].height == 0
    assert not chart.empty and bar_chart([("1", 0)]).empty


def test_top_customers_rank_by_every_license_they_hold(app: FastAPI, vendors: VendorFactory):
    """The ranking reads kept counts: each way of issuing licenses adds to them."""
    vendor = vendors.create()
    small = vendor.ok("POST", "/customers", json={"name": "Small Buyer"})
    big = vendor.ok("POST", "/customers", json={"name": "Big Buyer"})
    template = vendor.template()
    vendor.order([{"sku": template["sku"], "quantity": 2}], customer_id=small["id"])
    first = vendor.order([{"sku": template["sku"], "quantity": 1}], customer_id=big["id"])
    vendor.order(  # the same order again, with a line it did not have: one more license
        [{"sku": template["sku"], "quantity": 1}, {"sku": template["sku"], "line_id": "2"}],
        customer_id=big["id"],
        external_order_id=first["external_order_id"],
    )
    license_id = vendor.ok("GET", f"/tickets/{first['ticket_id']}")["license_ids"][0]
    vendor.ok("POST", f"/licenses/{license_id}/actions/replace")  # a successor: one more
    vendor.order()  # no customer: counted for nobody
    html = console(app, vendor).get("/console/").text
    ranked = re.findall(r"(Big|Small) Buyer</a></td><td[^>]*>(\d+)</td>", html)
    assert ranked == [("Big", "3"), ("Small", "2")]
