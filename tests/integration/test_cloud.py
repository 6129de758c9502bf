"""Cloud containers, seats and counters through the wire protocol."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from httpx import Response
from sqlalchemy import select, update

from licentia.formats.device import okp_jwk, unverified_claims
from licentia.server.db.base import utcnow
from licentia.server.seats import services as seats
from licentia.server.seats.models import SeatSlot
from tests.factories import VendorHandle
from tests.integration.device_messages import BareDevice


class CloudUser:
    """A registered device in a container, speaking the cloud protocol."""

    def __init__(self, vendor: VendorHandle, credential: str, name: str = "laptop") -> None:
        self.vendor = vendor
        response = self._post("devices", json={"credential": credential, "name": name}, auth=False)
        assert response.status_code == 201, response.text
        self.token = response.json()["token"]

    def _post(self, path: str, auth: bool = True, **kwargs):
        headers = {"Authorization": f"Bearer {self.token}"} if auth else {}
        return self.vendor.client.post(
            f"/api/v1/vendors/{self.vendor.slug}/cloud/{path}", headers=headers, **kwargs
        )

    def checkout(self, product: str, user: str, device: str = "pc", process: str = "1", **extra):
        body = {"product": product, "user": user, "device": device, "process": process, **extra}
        return self._post("seats", json=body)

    def heartbeat(self, lease_id: str, fence: int):
        return self._post(f"seats/{lease_id}/heartbeat", json={"fence": fence})

    def release(self, lease_id: str, fence: int | None):
        query = "" if fence is None else f"?fence={fence}"
        return self.vendor.client.delete(
            f"/api/v1/vendors/{self.vendor.slug}/cloud/seats/{lease_id}{query}",
            headers={"Authorization": f"Bearer {self.token}"},
        )

    def consume(self, product: str, units: int, key: str):
        return self._post("counters/consume", json={"product": product, "units": units, "key": key})

    def check(self, product: str, feature: str | None = None):
        return self._post("check", json={"product": product, "feature": feature})


def _container(vendor: VendorHandle, **options) -> tuple[str, str, dict]:
    template = vendor.template(options)
    order = vendor.order([{"sku": template["sku"], "quantity": 1}])
    redeemed = vendor.client.post(
        f"/api/v1/vendors/{vendor.slug}/cloud/redeem", json={"ticket": order["ticket_code"]}
    )
    assert redeemed.status_code == 201, redeemed.text
    body = redeemed.json()
    product = vendor.ok("GET", f"/licenses/{body['license_ids'][0]}")["product_code"]
    return body["credential"], product, body


def test_a_redeemed_cloud_license_is_checked_online_with_a_short_lived_token(vendors):
    vendor = vendors.create()
    credential, product, _ = _container(vendor, delivery="cloud", access_token_seconds=60)
    user = CloudUser(vendor, credential)
    answer = user.check(product, "edit")
    assert answer.status_code == 200, answer.text
    expires = datetime.fromisoformat(answer.json()["expires_at"])
    assert expires <= datetime.now(UTC) + timedelta(seconds=61)
    assert user.check(product, "nope").json()["code"] == "FEATURE_MISSING"


def test_at_most_n_devices_register_and_a_credential_reset_strands_them(vendors):
    vendor = vendors.create()
    credential, product, body = _container(vendor, delivery="cloud", max_devices=2)
    first, _second = CloudUser(vendor, credential, "office"), CloudUser(vendor, credential, "home")
    third = vendor.client.post(
        f"/api/v1/vendors/{vendor.slug}/cloud/devices",
        json={"credential": credential, "name": "third"},
    )
    assert third.status_code == 409 and third.json()["code"] == "DEVICE_LIMIT_REACHED"
    vendor.ok("POST", f"/cloud-containers/{body['container_id']}/actions/reset-credential")
    stranded = first.check(product)
    assert stranded.status_code == 401 and stranded.json()["code"] == "CREDENTIAL_RESET"


def test_seats_are_never_handed_out_beyond_the_pool_and_denials_are_recorded(vendors):
    vendor = vendors.create()
    credential, product, body = _container(vendor, delivery="seat_pool", seats=5)
    user = CloudUser(vendor, credential)
    with ThreadPoolExecutor(max_workers=25) as pool:
        answers = list(
            pool.map(lambda n: user.checkout(product, f"user{n}").status_code, range(40))
        )
    assert answers.count(201) == 5 and answers.count(409) == 35
    license_id = body["license_ids"][0]
    assert len(vendor.ok("GET", f"/licenses/{license_id}/seats")["items"]) == 5
    denials = vendor.ok(
        "GET", f"/licenses/{license_id}/seat-events", params={"kind": "deny", "limit": 200}
    )["items"]
    assert len(denials) == 35 and {d["in_use"] for d in denials} <= {5}


def _denials(vendor: VendorHandle, license_id: str) -> list[tuple[str, int]]:
    events = vendor.ok(
        "GET", f"/licenses/{license_id}/seat-events", params={"kind": "deny", "limit": 200}
    )["items"]
    return [(event["holder_key"], event["in_use"]) for event in events]


def test_a_checkout_refused_because_others_wait_in_line_is_recorded(vendors):
    vendor = vendors.create()
    credential, product, body = _container(vendor, delivery="seat_pool", seats=2)
    user = CloudUser(vendor, credential)
    assert user.checkout(product, "ann").status_code == 201
    with vendor.database.transaction() as session:  # someone waits for the last seat
        queue = f"{body['container_id']}:{product}:"
        seats.enqueue(session, vendor.id, queue, now=utcnow(), ttl=timedelta(minutes=5))
    refused = user.checkout(product, "carl")
    assert refused.status_code == 409 and refused.json()["queued"] is True
    # The seat still free is promised to the one waiting ahead: none was carl's.
    assert _denials(vendor, body["license_ids"][0]) == [("u:carl", 2)]


def test_a_waiting_checkout_records_one_denial_when_it_gives_up_and_none_when_served(vendors):
    vendor = vendors.create()
    credential, product, body = _container(vendor, delivery="seat_pool", seats=1)
    user = CloudUser(vendor, credential)
    lease = user.checkout(product, "ann").json()
    gave_up = user.checkout(product, "bob", wait_seconds=0.5)
    assert gave_up.status_code == 409
    assert _denials(vendor, body["license_ids"][0]) == [("u:bob", 1)]
    with ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(user.checkout, product, "cid", wait_seconds=30)
        time.sleep(0.3)  # (cid may or may not have tried yet: either way it is served)
        user.release(lease["lease_id"], lease["fence"])
        assert waiting.result().status_code == 201
    assert _denials(vendor, body["license_ids"][0]) == [("u:bob", 1)]


def test_a_reconnecting_client_gets_its_own_seat_back_instead_of_a_second_one(vendors):
    vendor = vendors.create()
    credential, product, body = _container(
        vendor, delivery="seat_pool", seats=2, seat_counting="per_process"
    )
    user = CloudUser(vendor, credential)
    first = user.checkout(product, "ann", process="42").json()
    again = user.checkout(product, "ann", process="42").json()
    assert again["lease_id"] == first["lease_id"] and again["reconnected"] is True
    assert len(vendor.ok("GET", f"/licenses/{body['license_ids'][0]}/seats")["items"]) == 1


def test_an_expired_lease_is_not_counted_and_its_stale_holder_cannot_extend_the_seat(
    vendors, database
):
    vendor = vendors.create()
    credential, product, _ = _container(vendor, delivery="seat_pool", seats=1)
    user = CloudUser(vendor, credential)
    stale = user.checkout(product, "ann").json()
    with database.transaction() as session:  # the holder went silent past its lease
        session.execute(
            update(SeatSlot)
            .where(SeatSlot.lease_id == stale["lease_id"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    fresh = user.checkout(product, "bob")
    assert fresh.status_code == 201 and fresh.json()["fence"] == stale["fence"] + 1
    lost = user.heartbeat(stale["lease_id"], stale["fence"])
    assert lost.status_code == 409 and lost.json()["code"] == "SEAT_LOST"
    assert user.heartbeat(fresh.json()["lease_id"], fresh.json()["fence"]).status_code == 200


def test_a_released_seat_is_free_at_once_and_the_vendor_can_force_release(vendors):
    vendor = vendors.create()
    credential, product, body = _container(vendor, delivery="seat_pool", seats=1)
    user = CloudUser(vendor, credential)
    lease = user.checkout(product, "ann").json()
    assert user.release(lease["lease_id"], lease["fence"]).status_code == 204
    taken = user.checkout(product, "bob").json()
    vendor.request("DELETE", f"/licenses/{body['license_ids'][0]}/seats/{taken['lease_id']}")
    assert user.checkout(product, "cid").status_code == 201


def test_a_waiting_checkout_gets_the_seat_when_it_frees(vendors):
    vendor = vendors.create()
    credential, product, _ = _container(vendor, delivery="seat_pool", seats=1)
    user = CloudUser(vendor, credential)
    lease = user.checkout(product, "ann").json()
    with ThreadPoolExecutor(max_workers=1) as pool:
        waiting = pool.submit(user.checkout, product, "bob", wait_seconds=10)
        user.release(lease["lease_id"], lease["fence"])
        assert waiting.result().status_code == 201


def test_a_consumption_counts_once_per_key_and_never_below_zero(vendors):
    vendor = vendors.create()
    credential, product, body = _container(vendor, delivery="cloud", units=100)
    user = CloudUser(vendor, credential)
    keys = [str(uuid.uuid4()) for _ in range(60)]
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda k: user.consume(product, 2, k), keys + keys[:20]))
    granted = {a.json()["key"] for a in answers if a.status_code == 200}
    assert len(granted) == 50
    assert all(a.json()["code"] == "UNITS_EXHAUSTED" for a in answers if a.status_code != 200)
    units = vendor.ok("GET", f"/licenses/{body['license_ids'][0]}/units")
    assert units["balance"] == units["recomputed_from_ledger"] == 0


def test_a_consumption_crossing_the_low_balance_mark_is_audited_once(vendors):
    vendor = vendors.create()
    credential, product, _ = _container(vendor, delivery="cloud", units=100)
    user = CloudUser(vendor, credential)
    balances = [user.consume(product, 3, f"k{n}").json()["balance_after"] for n in range(33)]
    assert balances[-1] == 1 and balances[29:31] == [10, 7]  # 10 % of 100 crossed once
    events = vendor.ok("GET", "/audit-events", params={"action": "counter.low_balance"})
    assert [e["after"]["balance"] for e in events["items"]] == [7]


def test_the_hot_calls_refuse_a_wrong_token_an_unknown_vendor_and_a_deregistered_device(
    vendors,
):
    vendor = vendors.create()
    credential, product, _ = _container(vendor, delivery="seat_pool", seats=2, units=10)
    user = CloudUser(vendor, credential)
    lease = user.checkout(product, "ann").json()
    calls: list[Callable[[], Response]] = [
        lambda: user.checkout(product, "bob"),
        lambda: user.heartbeat(lease["lease_id"], lease["fence"]),
        lambda: user.release(lease["lease_id"], lease["fence"]),
        lambda: user.consume(product, 1, "k1"),
    ]
    token = user.token
    user.token = token[:-4] + "AAAA"  # the right prefix, another secret
    assert {call().status_code for call in calls} == {401}
    user.token, slug = token, vendor.slug
    vendor.slug = "no-such-vendor"
    assert {call().status_code for call in calls} == {404}
    vendor.slug = slug
    assert user.heartbeat(lease["lease_id"], lease["fence"]).status_code == 200
    gone = vendor.client.delete(
        f"/api/v1/vendors/{slug}/cloud/devices/current",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert gone.status_code == 204
    assert {call().json()["code"] for call in calls} == {"DEVICE_DEREGISTERED"}


def test_a_release_records_the_seats_left_in_use_and_another_containers_lease_is_not_yours(
    vendors,
):
    vendor = vendors.create()
    credential, product, body = _container(vendor, delivery="seat_pool", seats=3)
    other_credential, _, _ = _container(vendor, delivery="seat_pool", seats=3)
    user, stranger = CloudUser(vendor, credential), CloudUser(vendor, other_credential)
    leases = [user.checkout(product, name).json() for name in ("ann", "bob", "cid")]
    lost = stranger.heartbeat(leases[0]["lease_id"], leases[0]["fence"])
    assert lost.status_code == 409 and lost.json()["code"] == "SEAT_LOST"
    first, fence = leases[0]["lease_id"], leases[0]["fence"]
    assert stranger.release(first, fence).status_code == 204  # not its seat: no-op
    assert user.release(first, fence).status_code == 204
    assert user.release(first, fence).status_code == 204  # twice is harmless
    events = vendor.ok(
        "GET", f"/licenses/{body['license_ids'][0]}/seat-events", params={"kind": "release"}
    )["items"]
    assert [(e["lease_id"], e["holder_key"], e["in_use"]) for e in events] == [
        (leases[0]["lease_id"], "u:ann", 2)
    ]


def test_another_device_of_the_container_cannot_name_a_holder_and_take_its_seat(vendors):
    vendor = vendors.create()
    for counting in ("per_process", "per_device"):
        credential, product, _ = _container(
            vendor, delivery="seat_pool", seats=2, seat_counting=counting
        )
        owner, other = CloudUser(vendor, credential, "owner"), CloudUser(vendor, credential)
        held = owner.checkout(product, "ann", device="pc", process="7").json()
        named = other.checkout(product, "ann", device="pc", process="7")
        assert named.status_code == 201, named.text
        assert named.json()["lease_id"] != held["lease_id"], counting
        assert named.json()["reconnected"] is False
        assert owner.heartbeat(held["lease_id"], held["fence"]).status_code == 200
        back = owner.checkout(product, "ann", device="pc", process="7").json()
        assert (back["lease_id"], back["reconnected"]) == (held["lease_id"], True)


def test_a_release_names_the_lease_and_its_fence(vendors):
    vendor = vendors.create()
    credential, product, _ = _container(vendor, delivery="seat_pool", seats=1)
    user = CloudUser(vendor, credential)
    lease = user.checkout(product, "ann").json()
    unfenced = user.release(lease["lease_id"], None)
    assert (unfenced.status_code, unfenced.json()["field"]) == (422, "fence")
    assert user.release(lease["lease_id"], lease["fence"] + 1).status_code == 204
    assert user.heartbeat(lease["lease_id"], lease["fence"]).status_code == 200  # still held
    assert user.release(lease["lease_id"], lease["fence"]).status_code == 204
    lost = user.heartbeat(lease["lease_id"], lease["fence"])
    assert (lost.status_code, lost.json()["code"]) == (409, "SEAT_LOST")


def test_a_fence_beyond_the_32_bits_of_a_lease_is_refused_and_the_lease_stays_held(vendors):
    """Found by the long fuzzing run: on PostgreSQL such a fence failed the batch of
    heartbeats or releases it came in (every other one then ran alone)."""
    vendor = vendors.create()
    credential, product, _ = _container(vendor, delivery="seat_pool", seats=1)
    user = CloudUser(vendor, credential)
    lease = user.checkout(product, "ann").json()
    for fence in (2**31, 2**63, -1):
        beat = user.heartbeat(lease["lease_id"], fence)
        assert (beat.status_code, beat.json()["field"]) == (422, "fence"), beat.text
        freed = user.release(lease["lease_id"], fence)
        assert (freed.status_code, freed.json()["field"]) == (422, "fence"), freed.text
    assert user.heartbeat(lease["lease_id"], lease["fence"]).status_code == 200


def test_a_borrowed_seat_is_held_offline_and_an_early_return_frees_it(vendors):
    vendor = vendors.create()
    credential, product, _ = _container(vendor, delivery="seat_pool", seats=1, max_borrow_days=7)
    user, device = CloudUser(vendor, credential), BareDevice(vendor.slug)
    lent = user._post(
        "borrow",
        json={"product": product, "user": "ann", "days": 3, "request": device.request("sync")},
    )
    assert lent.status_code == 201, lent.text
    assert user.checkout(product, "bob").status_code == 409
    proof = device._sign(
        {"lease": lent.json()["lease_id"], "device_key": _jwk(device)}, "licentia-return+jwt"
    )
    back = vendor.client.post(f"/api/v1/vendors/{vendor.slug}/cloud/borrow/returns", content=proof)
    assert back.status_code == 200, back.text
    assert user.checkout(product, "bob").status_code == 201


def _jwk(device: BareDevice) -> dict:
    return okp_jwk(device.key.public_key())


def _admin(vendor: VendorHandle, credential: str, method: str, path: str, **params):
    return vendor.client.request(
        method,
        f"/api/v1/vendors/{vendor.slug}/cloud/admin/{path}",
        headers={"Authorization": f"Bearer {credential}"},
        params=params,
    )


def test_the_customer_admin_sees_who_holds_which_seat_and_frees_one(vendors):
    vendor = vendors.create()
    credential, product, _ = _container(vendor, delivery="seat_pool", seats=1)
    user = CloudUser(vendor, credential)
    held = user.checkout(product, "ann", device="office-pc").json()
    assert user.checkout(product, "bob").status_code == 409
    (seat,) = _admin(vendor, credential, "GET", "seats").json()["items"]
    assert (seat["user"], seat["device"], seat["lease_id"]) == (
        "ann",
        "office-pc",
        held["lease_id"],
    )
    denials = _admin(vendor, credential, "GET", "denials").json()
    assert [d["holder_key"] for d in denials["items"]] == ["u:bob"]
    assert denials["next_cursor"] is None
    assert _admin(vendor, credential, "DELETE", f"seats/{held['lease_id']}").status_code == 204
    assert user.checkout(product, "bob").status_code == 201


def test_the_customer_admin_frees_a_device_slot_and_a_wrong_credential_sees_nothing(vendors):
    vendor = vendors.create()
    credential, _, _ = _container(vendor, delivery="cloud", max_devices=1)
    CloudUser(vendor, credential, "old laptop")
    (device,) = _admin(vendor, credential, "GET", "devices").json()["items"]
    freed = _admin(vendor, credential, "DELETE", f"devices/{device['id']}")
    assert freed.status_code == 200 and freed.json()["deregistered_at"] is not None
    CloudUser(vendor, credential, "new laptop")  # the slot is free again
    other_vendor_credential, _, _ = _container(vendors.create(), delivery="cloud")
    refused = _admin(vendor, other_vendor_credential, "GET", "devices")
    assert refused.status_code == 401 and refused.json()["code"] == "CREDENTIAL_INVALID"


def test_a_heartbeat_extends_the_lease_by_the_templates_lease_period(vendors):
    vendor = vendors.create()
    for options, seconds in (({"seat_lease_seconds": 90}, 90), ({}, 300)):
        credential, product, _ = _container(vendor, delivery="seat_pool", seats=1, **options)
        user = CloudUser(vendor, credential)
        lease = user.checkout(product, "ann").json()
        before = datetime.now(UTC)
        beat = user.heartbeat(lease["lease_id"], lease["fence"])
        after = datetime.now(UTC)
        assert beat.status_code == 200, beat.text
        expires = datetime.fromisoformat(beat.json()["expires_at"])
        period = timedelta(seconds=seconds)
        assert before + period - timedelta(seconds=1) <= expires <= after + period
        assert unverified_claims(beat.json()["token"])["exp"] == int(expires.timestamp())
        with vendor.database.read() as session:
            stored = session.scalar(
                select(SeatSlot.expires_at).where(SeatSlot.lease_id == lease["lease_id"])
            )
        assert stored == expires


def test_the_seats_held_and_the_seat_history_are_pages_like_every_list(vendors):
    vendor = vendors.create()
    credential, product, body = _container(vendor, delivery="seat_pool", seats=3)
    user = CloudUser(vendor, credential)
    for name in ("ann", "bob", "cid"):
        assert user.checkout(product, name).status_code == 201
    seats_path = f"/licenses/{body['license_ids'][0]}/seats"
    first = vendor.ok("GET", seats_path, params={"limit": 2})
    rest = vendor.ok("GET", seats_path, params={"limit": 2, "cursor": first["next_cursor"]})
    assert [seat["slot"] for seat in first["items"] + rest["items"]] == [1, 2, 3]
    assert rest["next_cursor"] is None
    assert {seat["user"] for seat in first["items"] + rest["items"]} == {"ann", "bob", "cid"}
    events_path = f"/licenses/{body['license_ids'][0]}/seat-events"
    events = vendor.ok("GET", events_path, params={"limit": 1})
    assert events["items"][0]["kind"] == "checkout" and events["next_cursor"] is not None
    malformed = vendor.get(events_path, params={"cursor": "!"})
    assert (malformed.status_code, malformed.json()["field"]) == (422, "cursor")


def test_a_license_says_which_cloud_container_holds_it(vendors):
    vendor = vendors.create()
    _, _, body = _container(vendor, delivery="cloud")
    license_ = vendor.ok("GET", f"/licenses/{body['license_ids'][0]}")
    assert license_["container_id"] == body["container_id"]
    assert license_["device_id"] is None


def test_the_customer_admins_lists_are_pages_like_every_list(vendors):
    vendor = vendors.create()
    credential, product, _ = _container(vendor, delivery="seat_pool", seats=3, max_devices=3)
    users = [CloudUser(vendor, credential, f"pc{n}") for n in range(3)]
    for n, user in enumerate(users):
        assert user.checkout(product, f"user{n}").status_code == 201
    for path in ("seats", "devices"):
        first = _admin(vendor, credential, "GET", path, limit=2).json()
        assert len(first["items"]) == 2 and first["next_cursor"] is not None
        rest = _admin(vendor, credential, "GET", path, limit=2, cursor=first["next_cursor"])
        assert len(rest.json()["items"]) == 1 and rest.json()["next_cursor"] is None
    held = _admin(vendor, credential, "GET", "seats").json()["items"]
    assert {seat["user"] for seat in held} == {"user0", "user1", "user2"}
    assert {seat["product"] for seat in held} == {product}


def test_a_seat_list_cursor_beyond_the_seat_numbers_is_a_page_not_an_error(vendors):
    """Seats page by their number, a narrower column than a cursor's 64 bits: a cursor
    past every seat number is an empty last page, one below them the first page
    (PostgreSQL refused to compare the column with such a number: 422)."""
    vendor = vendors.create()
    credential, product, body = _container(vendor, delivery="seat_pool", seats=2)
    assert CloudUser(vendor, credential).checkout(product, "ann").status_code == 201
    seats = f"/licenses/{body['license_ids'][0]}/seats"

    def cursor(number: int) -> str:
        return base64.urlsafe_b64encode(str(number).encode()).rstrip(b"=").decode()

    beyond = vendor.ok("GET", seats, params={"cursor": cursor(304250263527210)})
    assert beyond == {"items": [], "next_cursor": None}
    below = vendor.ok("GET", seats, params={"cursor": cursor(-(2**40))})
    assert [seat["user"] for seat in below["items"]] == ["ann"]
