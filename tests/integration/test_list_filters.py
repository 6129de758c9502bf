"""The API's list filters the console shares: licenses by device, devices by flag."""

from __future__ import annotations

from licentia.domain.actors import operator
from licentia.server.devices.models import Device
from licentia.server.devices.services import MANIPULATION, flag_device
from tests.factories import VendorFactory
from tests.integration.device_messages import activate_device


def test_licenses_by_the_device_that_holds_them(vendors: VendorFactory):
    vendor = vendors.create()
    held, free = vendor.order(), vendor.order()
    device_id = activate_device(vendor, held["ticket_code"])
    [license_id] = vendor.ok("GET", f"/tickets/{held['ticket_id']}")["license_ids"]
    listed = vendor.ok("GET", f"/licenses?device_id={device_id}")["items"]
    assert [item["id"] for item in listed] == [license_id]
    assert free["ticket_id"] not in {item["ticket_id"] for item in listed}


def test_devices_held_by_a_flag(vendors: VendorFactory):
    vendor = vendors.create()
    flagged = activate_device(vendor, vendor.order()["ticket_code"])
    plain = activate_device(vendor, vendor.order()["ticket_code"])
    with vendor.database.transaction() as session:
        device = session.get_one(Device, flagged)
        flag_device(session, operator(vendor.id), device, MANIPULATION, "store edited")
    for flag in ("any", MANIPULATION):
        listed = vendor.ok("GET", f"/devices?flag={flag}")["items"]
        assert [item["id"] for item in listed] == [flagged], flag
    assert vendor.ok("GET", "/devices?flag=clone_suspected")["items"] == []
    assert {item["id"] for item in vendor.ok("GET", "/devices")["items"]} == {flagged, plain}
    wrong = vendor.get("/devices?flag=haunted")
    assert wrong.status_code == 422 and "any" in wrong.json()["allowed"]
