"""Several processes of an application share one device store (the docs allow it) and
activate at the same moment, against a real License Central: each gets the license.

License Central answers each activation with its own update; a process whose update
arrives after a sibling stored a newer one finds its own update older than the store.
That is not a replay: the device holds the license, and activate() says so.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from licentia.client import LicenseClient

pytestmark = pytest.mark.slow

PROCESSES = 6
ROUNDS = 3
CHILD = """
import json, sys, time
from pathlib import Path
from licentia.client import LicenseClient, LicentiaClientError
server, vendor, keys, store, ticket, go = sys.argv[1:7]
client = LicenseClient(server, vendor, json.loads(Path(keys).read_text()), store_dir=Path(store))
while not Path(go).exists():
    time.sleep(0.001)
try:
    held = [e.license_id for e in client.activate(ticket)]
    print(json.dumps({"held": held}))
except LicentiaClientError as error:
    print(json.dumps({"error": error.code, "message": error.message}))
"""


def test_processes_sharing_a_store_that_activate_at_once_all_get_the_license(
    vendors, live_server, tmp_path: Path
) -> None:
    vendor = vendors.create()
    template = vendor.template({"delivery": "device"})
    keys = tmp_path / "jwks.json"
    keys.write_text(vendor.client.get(f"/api/v1/vendors/{vendor.slug}/jwks.json").text)
    store = tmp_path / "store"
    LicenseClient(None, vendor.slug, json.loads(keys.read_text()), store_dir=store).close()

    for round_ in range(ROUNDS):
        order = vendor.order([{"sku": template["sku"], "quantity": 1}])
        go = tmp_path / f"go-{round_}"
        args = [live_server, vendor.slug, str(keys), str(store), order["ticket_code"], str(go)]
        children = [
            subprocess.Popen(
                [sys.executable, "-c", CHILD, *args], stdout=subprocess.PIPE, text=True
            )
            for _ in range(PROCESSES)
        ]
        time.sleep(1.0)  # let them start; the go file releases them together
        go.touch()
        answers = [json.loads(child.communicate(timeout=120)[0]) for child in children]

        (license_id,) = vendor.ok("GET", f"/tickets/{order['ticket_id']}")["license_ids"]
        refused = [answer for answer in answers if "error" in answer]
        assert refused == [], f"round {round_}: {refused}"
        assert all(license_id in answer["held"] for answer in answers)
