"""Two activations of one device that wait for its row lock together: whichever goes
second must see what the first did, although its statement began before that.

PostgreSQL's READ COMMITTED re-reads only the locked row after a wait; the rest of the
statement still sees the database as it was when the statement began. The activation's
read must not answer from that older view: the device holds the license the first
activation bound, so the second is answered with it, not with NO_LICENSE_AVAILABLE.
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from sqlalchemy import text

from licentia.server.db.engine import Database
from tests.factories import VendorHandle
from tests.integration.device_messages import BareDevice

JOSE = {"Content-Type": "application/jose"}


def _waiting_on_locks(database: Database) -> int:
    with database.write_engine.connect() as connection:
        return int(
            connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
        )


def test_activations_that_waited_for_the_device_lock_both_get_the_license(
    backend: str, vendors, database: Database, live_server: str
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has one writer at a time: no statement waits inside a read")
    vendor: VendorHandle = vendors.create()
    template = vendor.template({"delivery": "device"})
    device = BareDevice(vendor.slug)
    url = f"{live_server}/api/v1/vendors/{vendor.slug}/devices/activate"
    first = vendor.order([{"sku": template["sku"], "quantity": 1}])
    bound = httpx.post(url, content=device.request("activate", first["ticket_code"]), headers=JOSE)
    assert bound.status_code == 200, bound.text
    second = vendor.order([{"sku": template["sku"], "quantity": 1}])
    request = device.request("activate", second["ticket_code"])

    answers: list[httpx.Response] = []

    def activate() -> None:
        answers.append(httpx.post(url, content=request, headers=JOSE, timeout=60))

    with database.write_engine.connect() as holder, holder.begin():
        holder.execute(
            text("SELECT id FROM devices WHERE key_id = :key FOR UPDATE"), {"key": device.id}
        )
        racers = [threading.Thread(target=activate) for _ in range(2)]
        for racer in racers:
            racer.start()
        give_up = time.monotonic() + 60
        while _waiting_on_locks(database) < 2:  # both statements began, both wait
            assert time.monotonic() < give_up, "the activations never reached the lock"
            time.sleep(0.05)
    for racer in racers:
        racer.join(timeout=60)

    assert [answer.status_code for answer in answers] == [200, 200], [a.text for a in answers]
    (license_id,) = vendor.ok("GET", f"/tickets/{second['ticket_id']}")["license_ids"]
    assert vendor.ok("GET", f"/licenses/{license_id}")["state"] == "activated"
