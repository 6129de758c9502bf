"""The console's device pages: a list filtered by status and flag, a device's detail
with its flags, and the vendor's actions (clear flags, blacklist, deactivate)."""

from __future__ import annotations

import re

from fastapi import FastAPI

from licentia.domain.actors import operator
from licentia.server.devices.models import Device
from licentia.server.devices.services import CLONE, flag_device
from tests.factories import VendorFactory, VendorHandle
from tests.integration.device_messages import activate_device
from tests.integration.web.console import post_forms, staff_browser


def _device(vendor: VendorHandle, *, flagged: bool = False) -> str:
    device_id = activate_device(vendor, vendor.order()["ticket_code"])
    if flagged:
        with vendor.database.transaction() as session:
            device = session.get_one(Device, device_id)
            flag_device(session, operator(vendor.id), device, CLONE, "seen on other hardware")
    return device_id


def test_the_list_filters_by_flag_and_status(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    flagged, plain = _device(vendor, flagged=True), _device(vendor)
    browser = staff_browser(app, vendor)
    page = browser.get("/console/devices?flag=clone_suspected")
    assert flagged in page.text and plain not in page.text
    assert "clone suspected" in page.text or "clone_suspected" in page.text
    page = browser.get("/console/devices?flag=any")
    assert flagged in page.text and plain not in page.text
    vendor.ok("POST", f"/devices/{plain}/actions/blacklist")
    page = browser.get("/console/devices?status=blacklisted")
    assert plain in page.text and flagged not in page.text
    wrong = browser.get("/console/devices?flag=haunted")
    assert wrong.status_code == 422 and "VALIDATION_FAILED" in wrong.text


def test_clear_the_flags_after_a_review(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    device_id = _device(vendor, flagged=True)
    browser = staff_browser(app, vendor)
    detail = f"/console/devices/{device_id}"
    page = browser.get(detail)
    assert "seen on other hardware" in page.text
    answer = browser.submit(detail, f"{detail}/clear-flags", {})
    assert answer.status_code == 303
    assert vendor.ok("GET", f"/devices/{device_id}")["flags"] == []
    assert "device.flags_cleared" in browser.get(detail).text


def test_blacklist_and_deactivate_free_the_licenses(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    first, second = _device(vendor), _device(vendor)
    browser = staff_browser(app, vendor)
    for device_id, action in ((first, "blacklist"), (second, "deactivate")):
        detail = f"/console/devices/{device_id}"
        assert browser.submit(detail, f"{detail}/{action}", {}).status_code == 303
        assert vendor.ok("GET", f"/devices/{device_id}")["license_ids"] == []
    assert vendor.ok("GET", f"/devices/{first}")["status"] == "blacklisted"
    assert vendor.ok("GET", f"/devices/{second}")["status"] == "active"


def test_a_read_only_member_sees_devices_but_cannot_act(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    device_id = _device(vendor, flagged=True)
    browser = staff_browser(app, vendor, "read-only")
    detail = f"/console/devices/{device_id}"
    page = browser.get(detail)
    assert page.status_code == 200 and post_forms(page.text) == []
    for action in ("clear-flags", "blacklist", "deactivate"):
        assert browser.submit(detail, f"{detail}/{action}", {}).status_code == 403, action
    assert vendor.ok("GET", f"/devices/{device_id}")["flags"] == ["clone_suspected"]


def test_another_vendors_device_is_not_found_and_not_changed(app: FastAPI, vendors: VendorFactory):
    mine, theirs = vendors.create(), vendors.create()
    device_id = _device(theirs)
    browser = staff_browser(app, mine)
    detail = f"/console/devices/{device_id}"
    assert browser.get(detail).status_code == 404
    assert device_id not in browser.get("/console/devices").text
    for action in ("clear-flags", "blacklist", "deactivate"):
        assert browser.submit("/console/devices", f"{detail}/{action}", {}).status_code == 404
    assert theirs.ok("GET", f"/devices/{device_id}")["status"] == "active"


def test_every_option_of_a_filter_has_a_label_of_its_own(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    page = staff_browser(app, vendor).get("/console/devices").text
    for name in ("flag", "status"):
        select = re.search(rf'<select id="q-{name}".*?</select>', page, re.S)
        assert select, name
        labels = re.findall(r"<option[^>]*>([^<]*)</option>", select.group(0))
        assert len(labels) == len(set(labels)), (name, labels)
    assert "any flag" in page and "all devices, flagged or not" in page
