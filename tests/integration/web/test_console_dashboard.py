"""The console's dashboard: today's activations, devices, seats and denials, counters
running low and top customers, as charts that carry their numbers as text."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi import FastAPI

from licentia.domain.actors import operator
from licentia.server.db.base import utcnow
from licentia.server.db.engine import Database
from licentia.server.reports.dashboard import dashboard
from licentia.server.seats.models import SeatEvent
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
    assert figure(html, "seat in use now") == 1  # one, so said in the singular
    assert figure(html, "seat denial") == 1
    assert "5 / 100" in html  # the counter running low
    assert re.search(r"Busy Customer</a></td><td[^>]*>2</td><td[^>]*>2</td>", html)
    assert 'class="value">4</text>' in html  # today's bar says its number


def chart_figures(html: str, chart: str) -> list[int]:
    """The values of a chart's table of figures, oldest day first."""
    found = re.search(rf'aria-labelledby="{chart}-title">(.*?)</figure>', html, re.S)
    assert found, f"no chart {chart}"
    table = found.group(1).split("<tbody>")[1]
    return [int(value) for value in re.findall(r"<tr><td>[^<]*</td><td>(\d+)</td></tr>", table)]


def test_the_most_seats_in_use_per_day_counts_every_seat_checked_out(
    app: FastAPI, vendors: VendorFactory
):
    """Three seats taken at once, then one given back: the day's peak is three, not the
    two the release recorded (a checkout's event does not count the seats in use)."""
    vendor = vendors.create()
    seats, product = cloud_user(vendor, delivery="seat_pool", seats=3)
    leases = [seats.checkout(product, name, device=name) for name in ("ann", "bob", "cy")]
    assert [lease.status_code for lease in leases] == [201, 201, 201]
    first = leases[0].json()
    assert seats.release(first["lease_id"], first["fence"]).status_code == 204
    html = console(app, vendor).get("/console/").text
    assert figure(html, "seats in use now") == 2
    peaks = chart_figures(html, "peak-seats")
    assert len(peaks) == 30 and peaks[-1] == 3 and sum(peaks[:-1]) == 0


def test_seats_held_for_days_count_on_each_of_them_summed_over_the_pools(
    vendors: VendorFactory, database: Database
):
    """The days replayed from each pool's events (hand-written here, to span days)."""
    vendor = vendors.create()
    license_ids = [vendor.license({"delivery": "seat_pool", "seats": 2})["id"] for _ in "ab"]
    now = utcnow()
    with database.transaction() as session:
        for license_id, history in zip(
            license_ids,
            (
                ((40, "checkout", 0), (3, "release", 0)),  # held from before the period
                ((5, "checkout", 0), (5, "checkout", 0), (2, "expire", 0)),
            ),
            strict=True,
        ):
            for days_ago, kind, in_use in history:
                session.add(
                    SeatEvent(
                        vendor_id=vendor.id,
                        license_id=license_id,
                        kind=kind,
                        in_use=in_use,
                        at=now - timedelta(days=days_ago),
                    )
                )
    with database.read() as session:
        figures = dashboard(session, operator(vendor.id), now)
    counts = [day.count for day in figures.peak_seats]
    assert counts[:24] == [1] * 24  # the first pool's seat, held since before the period
    assert counts[24:27] == [3, 3, 3]  # and the second pool's two, from five days ago
    assert counts[27:] == [2, 1, 1]  # the first pool's given back, one of the two expired


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
