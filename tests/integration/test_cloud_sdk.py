"""The cloud client SDK against a real License Central over HTTP (SQLite and PostgreSQL).

The server is the test app served by uvicorn on a loopback port; the client's only
fake is its network (:class:`Network`), which can go down or lose an answer after
the server acted — the conditions retries and reconnects exist for.
"""

from __future__ import annotations

import base64
import json
import socket
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from licentia.client import (
    CloudClient,
    CloudCredential,
    CredentialInvalidError,
    CredentialResetError,
    DeviceDeregisteredError,
    DeviceLimitReachedError,
    FeatureMissingError,
    FingerprintMismatchError,
    NetworkError,
    NoSeatAvailableError,
    NotActivatedError,
    RetryPolicy,
    SeatLostError,
    SignatureInvalidError,
    TransportError,
    UnitsExhaustedError,
    redeem_cloud_ticket,
)
from licentia.formats.document_types import BORROW_TYP
from licentia.formats.jws import sign_document
from tests.factories import VendorHandle

FAST_RETRY = RetryPolicy(attempts=4, base=0.05, cap=0.2, budget=2.0)
MACHINE = {"machine_id": "m-1", "mac_addresses": "aa:bb", "disk_serial": "d-1", "cpu_model": "c"}


@pytest.fixture(scope="module")
def live_url(app: FastAPI) -> Iterator[str]:
    """The test app served over real HTTP on a free loopback port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


class Network(httpx.BaseTransport):
    """The client's network: up or down, and able to lose the next answer to a path."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.up = True
        self.lose_answer_to: str | None = None
        self.sent: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not self.up:
            raise httpx.ConnectError("network unreachable", request=request)
        self.sent.append(f"{request.method} {request.url.path.split('/cloud/')[-1]}")
        response = self.inner.handle_request(request)
        if self.lose_answer_to and request.url.path.endswith(self.lose_answer_to):
            self.lose_answer_to = None
            response.read()
            response.close()
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response

    def count(self, endpoint: str) -> int:
        return sum(1 for line in self.sent if line.endswith(endpoint))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Cloud:
    """A redeemed cloud container and the means to make clients of it."""

    vendor: VendorHandle
    url: str
    credential: CloudCredential
    license_id: str
    product: str
    tmp: Path
    jwks: dict[str, Any]
    network: Network = field(default_factory=Network)

    def client(self, name: str = "laptop", **kwargs: Any) -> CloudClient:
        kwargs.setdefault("public_keys", self.jwks)  # shipped with the application
        kwargs.setdefault("transport", self.network)
        kwargs.setdefault("retry", FAST_RETRY)
        kwargs.setdefault("factor_source", lambda: MACHINE)
        return CloudClient(
            self.credential, state_dir=self.tmp / name, device_name=name, timeout=10, **kwargs
        )

    def seats_in_use(self) -> list[dict[str, Any]]:
        return list(self.vendor.ok("GET", f"/licenses/{self.license_id}/seats")["items"])


@pytest.fixture
def cloud(vendors, live_url, tmp_path):
    def make(**options: Any) -> Cloud:
        vendor = vendors.create()
        template = vendor.template(options)
        order = vendor.order([{"sku": template["sku"], "quantity": 1}])
        credential = redeem_cloud_ticket(live_url, vendor.slug, order["ticket_code"])
        ticket = vendor.ok("GET", f"/tickets/{order['ticket_id']}")
        license_ = vendor.ok("GET", f"/licenses/{ticket['license_ids'][0]}")
        jwks = vendor.ok("GET", f"/vendors/{vendor.slug}/jwks.json")
        return Cloud(
            vendor, live_url, credential, license_["id"], license_["product_code"], tmp_path, jwks
        )

    return make


# -- credential and registration -----------------------------------------------------


def test_a_redeemed_ticket_gives_a_licred_file_that_only_its_owner_can_read(cloud, tmp_path):
    setup = cloud(delivery="cloud")
    path = setup.credential.save(tmp_path / "team.licred")

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert CloudCredential.load(path) == setup.credential
    assert "lcc_" not in repr(setup.credential).replace("'lcc_…'", "")
    with pytest.raises(ValueError, match="version"):
        CloudCredential.from_json(setup.credential.to_json().replace('"licred": 1', '"licred": 2'))


def test_a_device_registers_once_and_every_client_on_it_reuses_the_registration(cloud):
    setup = cloud(delivery="cloud")
    first, second = setup.client("pc"), setup.client("pc")

    assert first.register() == second.register()
    first.check(setup.product)
    second.check(setup.product)

    registration = setup.tmp / "pc" / "registration.json"
    assert stat.S_IMODE(registration.stat().st_mode) == 0o600
    assert setup.network.count("devices") == 1
    detail = setup.vendor.ok("GET", f"/cloud-containers/{setup.credential.container_id}")
    assert len(detail["devices"]) == 1


def test_registering_beyond_the_device_limit_is_a_typed_error(cloud):
    setup = cloud(delivery="cloud", max_devices=2)
    setup.client("one").register()
    setup.client("two").register()

    with pytest.raises(DeviceLimitReachedError) as raised:
        setup.client("three").register()
    assert raised.value.server_code == "DEVICE_LIMIT_REACHED"


def test_after_a_credential_reset_the_device_gets_a_typed_error_and_the_new_file_registers(cloud):
    setup = cloud(delivery="cloud")
    client = setup.client("pc")
    client.check(setup.product, "edit")
    container = setup.credential.container_id
    reset = setup.vendor.ok("POST", f"/cloud-containers/{container}/actions/reset-credential")
    restarted = setup.client("pc")  # the application, started again after the reset

    with pytest.raises(CredentialResetError):
        restarted.check(setup.product, "edit")
    with pytest.raises(CredentialInvalidError):
        restarted.check(setup.product, "edit")  # the old file cannot register again
    renewed = CloudCredential(setup.url, setup.vendor.slug, container, reset["credential"])
    fresh = CloudClient(
        renewed, public_keys=setup.jwks, state_dir=setup.tmp / "pc", transport=setup.network
    )
    assert fresh.check(setup.product, "edit").source == "server"


def test_a_device_the_admin_deregistered_is_refused_until_it_registers_again(cloud):
    setup = cloud(delivery="cloud")
    client = setup.client()
    device_id = client.register()
    container = setup.credential.container_id
    setup.vendor.ok("DELETE", f"/cloud-containers/{container}/devices/{device_id}")

    with pytest.raises(DeviceDeregisteredError):
        client.check(setup.product)
    assert client.register(again=True) != device_id
    assert client.check(setup.product).source == "server"


# -- check -----------------------------------------------------------------------------


def test_a_check_answers_a_verified_token_and_reuses_it_while_it_is_fresh(cloud):
    setup = cloud(delivery="cloud", access_token_seconds=60)
    client = setup.client()

    first = client.check(setup.product, "edit")
    again = client.check(setup.product, "edit")

    assert (first.source, again.source) == ("server", "cache")
    assert first.token == again.token and "edit" in first.features
    assert first.claims["aud"] == setup.credential.container_id
    assert setup.network.count("check") == 1


def test_a_cached_token_rides_out_a_network_loss_until_it_expires(cloud):
    setup = cloud(delivery="cloud", access_token_seconds=60)
    clock = FakeClock()
    client = setup.client(monotonic=clock)
    token = client.check(setup.product)
    setup.network.up = False

    clock.now += 50  # stale enough to want a new one, still valid
    assert client.check(setup.product).token == token.token
    clock.now += 11  # expired
    with pytest.raises(NetworkError):
        client.check(setup.product)
    setup.network.up = True
    assert client.check(setup.product).source == "server"


def test_without_a_valid_token_and_without_network_a_check_is_a_network_error(cloud):
    setup = cloud(delivery="cloud")
    client = setup.client()
    client.register()
    setup.network.up = False

    with pytest.raises(NetworkError):
        client.check(setup.product)


def test_the_servers_refusals_of_a_check_are_typed(cloud):
    setup = cloud(delivery="cloud")
    client = setup.client()

    with pytest.raises(FeatureMissingError):
        client.check(setup.product, "teleport")
    with pytest.raises(NotActivatedError):
        client.check("NO-SUCH-PRODUCT")


# -- counters ----------------------------------------------------------------------------


def test_a_consumption_whose_answer_was_lost_is_retried_with_its_key_and_counted_once(cloud):
    setup = cloud(delivery="cloud", units=10)
    client = setup.client()
    client.register()
    setup.network.lose_answer_to = "counters/consume"

    consumed = client.consume(setup.product, 3, key="job-41")

    assert consumed.replayed and consumed.balance_after == 7
    units = setup.vendor.ok("GET", f"/licenses/{setup.license_id}/units")
    assert units["balance"] == units["recomputed_from_ledger"] == 7
    assert [e["key"] for e in units["ledger"] if e["kind"] == "consume"] == ["job-41"]


def test_consuming_more_than_is_left_raises_units_exhausted_and_takes_nothing(cloud):
    setup = cloud(delivery="cloud", units=5)
    client = setup.client()
    client.consume(setup.product, 4)

    with pytest.raises(UnitsExhaustedError) as raised:
        client.consume(setup.product, 2)
    assert raised.value.status == 409
    assert setup.vendor.ok("GET", f"/licenses/{setup.license_id}/units")["balance"] == 1


# -- seats -------------------------------------------------------------------------------


def test_a_seat_is_checked_out_kept_by_background_heartbeats_and_released_on_exit(cloud):
    setup = cloud(delivery="seat_pool", seats=1, seat_lease_seconds=10)
    client = setup.client()

    with client.seat(setup.product, user="ann") as seat:
        first_expiry = seat.expires_at
        deadline = time.monotonic() + 8
        while seat.expires_at == first_expiry and time.monotonic() < deadline:
            time.sleep(0.1)
        assert seat.expires_at > first_expiry and not seat.lost  # at about a third of the TTL
        assert setup.network.count("heartbeat") >= 1
        assert [s["lease_id"] for s in setup.seats_in_use()] == [seat.lease_id]
        seat.ensure()

    assert setup.seats_in_use() == []
    assert seat.release_error is None


def test_a_full_pool_refuses_with_no_seat_available_and_a_waiting_checkout_gets_the_freed_seat(
    cloud,
):
    setup = cloud(delivery="seat_pool", seats=1, seat_lease_seconds=30)
    client = setup.client()
    holder = client.seat(setup.product, user="ann").acquire()

    with pytest.raises(NoSeatAvailableError), client.seat(setup.product, user="bob"):
        pass
    threading.Timer(0.5, holder.release).start()
    with client.seat(setup.product, user="bob", wait=10) as waited:
        assert waited.lease_id != holder.lease_id


def test_a_checkout_that_gave_up_waiting_does_not_hold_up_the_line(cloud):
    setup = cloud(delivery="seat_pool", seats=1)
    client = setup.client()
    holder = client.seat(setup.product, user="ann").acquire()
    with pytest.raises(NoSeatAvailableError), client.seat(setup.product, user="bob", wait=0.3):
        pass
    holder.release()

    with client.seat(setup.product, user="cid") as seat:  # no wait: the line is empty
        assert seat.lease_id != holder.lease_id


def test_a_holder_gets_its_own_seat_back_even_while_others_wait_in_line(cloud):
    setup = cloud(delivery="seat_pool", seats=1, seat_counting="per_process")
    client = setup.client()
    holder = client.seat(setup.product, user="ann", process="1").acquire()
    bob = client.seat(setup.product, user="bob", process="2", wait=3)
    waiter = threading.Thread(target=bob.acquire)
    waiter.start()
    time.sleep(0.5)  # bob is in line now

    again = client.seat(setup.product, user="ann", process="1").acquire()

    assert again.reconnected and again.lease_id == holder.lease_id
    again.release()
    holder.release()
    waiter.join(timeout=10)
    assert [s["user"] for s in setup.seats_in_use()] == ["bob"]
    bob.release()


def test_a_checkout_whose_answer_was_lost_gets_the_same_seat_back_not_a_second_one(cloud):
    setup = cloud(delivery="seat_pool", seats=2, seat_counting="per_process")
    client = setup.client()
    client.register()
    setup.network.lose_answer_to = "/seats"

    with client.seat(setup.product, user="ann", process="7") as seat:
        assert seat.reconnected
        assert [s["lease_id"] for s in setup.seats_in_use()] == [seat.lease_id]


def test_a_brief_network_loss_does_not_lose_the_seat(cloud):
    setup = cloud(delivery="seat_pool", seats=1, seat_lease_seconds=30)
    client = setup.client()

    with client.seat(setup.product, user="ann") as seat:
        lease, fence = seat.lease_id, seat.fence
        setup.network.up = False
        with pytest.raises(TransportError):
            seat.heartbeat()
        seat.ensure()  # still within its lease
        setup.network.up = True
        seat.heartbeat()
        assert (seat.lease_id, seat.fence, seat.lost) == (lease, fence, False)


def test_a_force_released_seat_is_reported_lost_through_the_callback_and_ensure(cloud):
    setup = cloud(delivery="seat_pool", seats=1)
    client = setup.client()
    reports: list[SeatLostError] = []

    with client.seat(setup.product, user="ann", on_lost=reports.append) as seat:
        setup.vendor.request("DELETE", f"/licenses/{setup.license_id}/seats/{seat.lease_id}")
        with pytest.raises(SeatLostError):
            seat.heartbeat()
        with pytest.raises(SeatLostError):
            seat.ensure()
        assert seat.lost and seat.error is not None
        assert seat.error.server_code == "SEAT_LOST"
    assert len(reports) == 1


def test_a_seat_whose_lease_ran_out_while_offline_is_reported_lost(cloud):
    setup = cloud(delivery="seat_pool", seats=1, seat_lease_seconds=10)
    clock = FakeClock()
    client = setup.client(monotonic=clock)
    reports: list[SeatLostError] = []

    with client.seat(setup.product, user="ann", on_lost=reports.append) as seat:
        setup.network.up = False
        clock.now += 10.5
        assert seat.lost
        with pytest.raises(SeatLostError, match="unreachable"):
            seat.ensure()
        setup.network.up = True
    assert len(reports) == 1


# -- borrowing ---------------------------------------------------------------------------


def test_a_borrowed_seat_is_usable_offline_and_stays_held_on_the_server(cloud):
    setup = cloud(delivery="seat_pool", seats=1, max_borrow_days=7)
    client = setup.client()

    borrowed = client.borrow(setup.product, days=3, user="ann")
    setup.network.up = False
    offline = setup.client().check(setup.product, "edit")  # a fresh start, offline

    assert offline.source == "borrow" and offline.license_id == setup.license_id
    assert [b.lease_id for b in client.borrows()] == [borrowed.lease_id]
    assert [s["borrowed"] for s in setup.seats_in_use()] == [True]
    setup.network.up = True
    with pytest.raises(NoSeatAvailableError), client.seat(setup.product, user="bob"):
        pass


def test_a_borrow_on_changed_hardware_is_refused(cloud):
    setup = cloud(
        delivery="seat_pool",
        seats=1,
        max_borrow_days=7,
        fingerprint_tolerance={"preset": "strict"},
    )
    setup.client().borrow(setup.product, days=1)
    new_disk = dict(MACHINE, disk_serial="d-2")  # the device store (medium) still opens
    moved = setup.client(factor_source=lambda: new_disk)
    setup.network.up = False

    with pytest.raises(FingerprintMismatchError):
        moved.borrowed(setup.product)
    assert moved.borrows() == []
    with pytest.raises(NetworkError):
        moved.check(setup.product)


def test_an_early_online_return_frees_the_seat_and_forgets_the_document(cloud):
    setup = cloud(delivery="seat_pool", seats=1, max_borrow_days=7)
    client = setup.client()
    borrowed = client.borrow(setup.product, days=2)

    client.return_borrow(borrowed)

    assert client.borrows() == [] and setup.seats_in_use() == []
    assert client.check(setup.product).source == "server"


def test_an_offline_return_file_frees_the_seat_once_uploaded(cloud, tmp_path):
    setup = cloud(delivery="seat_pool", seats=1, max_borrow_days=7)
    offline = setup.client("field")
    borrowed = offline.borrow(setup.product, days=2)
    setup.network.up = False

    proof = offline.borrow_return_file(borrowed, tmp_path / "return.jws")
    assert offline.borrows() == []
    setup.network.up = True
    setup.client("office").submit_borrow_return((tmp_path / "return.jws").read_text())

    assert proof.count(".") == 2 and setup.seats_in_use() == []


def test_a_borrow_document_not_signed_by_the_shipped_keys_is_refused(cloud):
    setup = cloud(delivery="seat_pool", seats=1, max_borrow_days=7)
    client = setup.client()
    genuine = client.borrow(setup.product, days=2)
    forger = Ed25519PrivateKey.generate()  # a fake server's key, say
    claims = dict(genuine.claims, exp=genuine.claims["exp"] + 365 * 86400)
    forged = sign_document(claims, forger, kid=_kid(genuine.document), typ=BORROW_TYP)
    (setup.tmp / "laptop" / "borrows" / f"{genuine.lease_id}.jws").write_text(forged)

    with pytest.raises(SignatureInvalidError):
        client.borrowed(setup.product)


def test_without_the_vendors_shipped_keys_borrowing_is_refused(cloud):
    setup = cloud(delivery="seat_pool", seats=1, max_borrow_days=7)
    client = setup.client(public_keys=None)

    assert client.check(setup.product).source == "server"  # keys fetched for online tokens
    with pytest.raises(ValueError, match="public_keys"):
        client.borrow(setup.product, days=1)
    assert setup.seats_in_use() == []


def _kid(document: str) -> str:
    header = document.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])
