"""The customer admin's API with the container credential: renaming the container and
reading its unit counters (the same use cases as the portal's pages)."""

from __future__ import annotations

from tests.factories import VendorFactory
from tests.integration.test_cloud import CloudUser, _admin, _container


def test_the_customer_admin_renames_the_container_and_a_blank_name_is_refused(
    vendors: VendorFactory,
):
    vendor = vendors.create()
    credential, _, body = _container(vendor, delivery="cloud")
    path = f"/api/v1/vendors/{vendor.slug}/cloud/admin/container"
    headers = {"Authorization": f"Bearer {credential}"}
    renamed = vendor.client.patch(path, headers=headers, json={"name": " Design team "})
    assert renamed.status_code == 200 and renamed.json()["name"] == "Design team"
    assert vendor.ok("GET", f"/cloud-containers/{body['container_id']}")["name"] == "Design team"
    blank = vendor.client.patch(path, headers=headers, json={"name": "  "})
    assert blank.status_code == 422 and blank.json()["code"] == "VALIDATION_FAILED"
    events = vendor.ok("GET", "/audit-events", params={"action": "cloud_container.renamed"})
    assert [e["after"]["name"] for e in events["items"]] == ["Design team"]


def test_the_customer_admin_reads_the_units_left(vendors: VendorFactory):
    vendor = vendors.create()
    credential, product, body = _container(vendor, delivery="cloud", units=20)
    assert CloudUser(vendor, credential).consume(product, 4, "k1").status_code == 200
    counters = _admin(vendor, credential, "GET", "counters")
    assert counters.status_code == 200
    assert counters.json() == [
        {"license_id": body["license_ids"][0], "product": product, "balance": 16}
    ]
    other_credential, _, _ = _container(vendors.create(), delivery="cloud", units=5)
    refused = _admin(vendor, other_credential, "GET", "counters")
    assert refused.status_code == 401 and refused.json()["code"] == "CREDENTIAL_INVALID"
