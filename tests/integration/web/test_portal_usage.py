"""The customer admin's usage charts: seats in use and refused requests per day on the
seats page, units used per day on the counters pages, each with its figures in a
table; only the container's own figures, read by ``reports.container_usage``."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi import FastAPI

from licentia.server.db.base import utcnow
from licentia.server.db.engine import Database
from licentia.server.reports.container_usage import seat_usage
from licentia.server.seats.models import SeatEvent
from tests.factories import VendorFactory
from tests.integration.test_cloud import CloudUser
from tests.integration.web.cloud_desk import customer_container
from tests.integration.web.pages import Browser, log_in_customer


def figures(page: str, chart: str) -> list[int]:
    """The values of a chart's table of figures, oldest day first."""
    found = re.search(rf'aria-labelledby="{chart}-title">(.*?)</figure>', page, re.S)
    assert found, f"no chart {chart}"
    table = found.group(1).split("<tbody>")[1]
    return [int(value) for value in re.findall(r"<tr><td>[^<]*</td><td>(\d+)</td></tr>", table)]


def test_the_seats_page_charts_the_seats_in_use_and_the_refusals(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    vendor = vendors.create()
    mine = customer_container(database, vendor, delivery="seat_pool", seats=2)
    user = CloudUser(vendor, mine.credential)
    browser = Browser(app)
    log_in_customer(browser, vendor, mine.admin_email)
    here = f"/portal/{vendor.slug}/containers/{mine.container_id}/seats"
    assert user.checkout(mine.product, "ann", device="ann").status_code == 201
    assert figures(browser.get(here).text, "seats-in-use")[-1] == 1
    assert user.checkout(mine.product, "bob", device="bob").status_code == 201
    assert user.checkout(mine.product, "cy", device="cy").status_code == 409
    page = browser.get(here).text
    in_use, denials = figures(page, "seats-in-use"), figures(page, "seat-denials")
    assert len(in_use) == 30 and in_use[-1] == 2 and sum(in_use[:-1]) == 0
    assert denials[-1] == 1 and sum(denials) == 1
    assert 'class="value">2</text>' in page  # the value is written on its bar, not only coloured
    assert 'fill="url(#seat-denials-hatch)"' in page  # refusals hatched


def test_a_seat_held_for_days_counts_on_each_of_them(vendors: VendorFactory, database: Database):
    vendor = vendors.create()
    mine = customer_container(database, vendor, delivery="seat_pool", seats=3)
    now = utcnow()
    with database.transaction() as session:
        for days_ago, kind, in_use in (
            (40, "checkout", 0),  # a checkout's event does not count the seats in use
            (5, "checkout", 0),
            (3, "release", 1),
            (1, "expire", 0),  # the sweep's: frees one
        ):
            session.add(
                SeatEvent(
                    vendor_id=vendor.id,
                    license_id=mine.license_id,
                    kind=kind,
                    in_use=in_use,
                    at=now - timedelta(days=days_ago),
                )
            )
    with database.read() as session:
        usage = seat_usage(session, mine.container_id, now)
    counts = [day.count for day in usage.in_use]
    assert counts[:24] == [1] * 24  # held since before the period
    assert counts[24:27] == [2, 2, 2]  # a second seat taken five days ago, until three ago
    assert counts[27:] == [1, 1, 0]


def test_the_counters_pages_chart_the_units_used_of_this_container_only(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    vendor = vendors.create()
    mine = customer_container(database, vendor, delivery="cloud", units=100)
    theirs = customer_container(database, vendor, delivery="cloud", units=100)
    user, other = CloudUser(vendor, mine.credential), CloudUser(vendor, theirs.credential)
    assert user.consume(mine.product, 5, "job-1").status_code == 200
    assert user.consume(mine.product, 7, "job-2").status_code == 200
    assert other.consume(theirs.product, 50, "job-1").status_code == 200
    browser = Browser(app)
    log_in_customer(browser, vendor, mine.admin_email)
    here = f"/portal/{vendor.slug}/containers/{mine.container_id}/counters"
    for path in (here, f"{here}/{mine.license_id}"):
        used = figures(browser.get(path).text, "units-used")
        assert used[-1] == 12 and sum(used) == 12, path
    assert browser.get(f"{here}/{theirs.license_id}").status_code == 404


def test_the_charts_speak_german(app: FastAPI, vendors: VendorFactory, database: Database):
    vendor = vendors.create()
    mine = customer_container(database, vendor, delivery="seat_pool", seats=1, units=10)
    browser = Browser(app, language="de")
    log_in_customer(browser, vendor, mine.admin_email)
    base = f"/portal/{vendor.slug}/containers/{mine.container_id}"
    assert "Höchste Platzbelegung pro Tag" in browser.get(f"{base}/seats").text
    assert "Verbrauchte Einheiten pro Tag" in browser.get(f"{base}/counters").text
