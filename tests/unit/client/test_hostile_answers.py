"""Whatever the network answers, every SDK call either works or raises a
LicentiaClientError: forged, garbled, truncated, replayed or misaddressed answers,
through a fake httpx transport (the SDK's seam for the network), for every call that
talks to License Central.

A fake vendor answers each endpoint correctly; one endpoint at a time gets a hostile
answer instead. Tokens that are genuine but expired, or about another product,
container, device, lease or fence, must be refused, not used.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from licentia.client import (
    CloudClient,
    CloudCredential,
    LicenseClient,
    LicentiaClientError,
    RetryPolicy,
    SignatureInvalidError,
    Virtualization,
)
from licentia.formats.device import unverified_claims
from licentia.formats.document_types import ACCESS_TYP, BORROW_TYP, SEAT_TYP
from licentia.formats.jws import public_jwk, sign_document
from licentia.formats.tickets import generate_ticket_code

from .harness import MACHINE
from .vendor import BareVendor, Offer, Request

CONTAINER, DEVICE, LEASE = "c-1", "d-1", "S-1"
Answer = tuple[int, Any]  # status, JSON body (or bytes sent as they are)
Mutation = Callable[[Answer, "FakeVendor"], Answer]


class FakeVendor:
    """License Central's cloud and device endpoints, answered correctly."""

    def __init__(self) -> None:
        self.bare = BareVendor()
        self.key, self.kid = self.bare.key, self.bare.kid
        self.now = datetime.now(UTC)

    def claims(self, product: str = "CAD", **extra: Any) -> dict[str, Any]:
        now = int(self.now.timestamp())
        return {
            "iss": "acme",
            "sub": "L-1",
            "aud": CONTAINER,
            "device": DEVICE,
            "iat": now,
            "exp": now + 300,
            "product": product,
            "features": ["render"],
        } | extra

    def token(self, typ: str, **claims: Any) -> str:
        return sign_document(self.claims(**claims), self.key, kid=self.kid, typ=typ)

    def lease(self) -> dict[str, Any]:
        expires = (self.now + timedelta(seconds=300)).isoformat()
        token = self.token(SEAT_TYP, lease=LEASE, fence=1, scope=None)
        return {
            "lease_id": LEASE,
            "license_id": "L-1",
            "fence": 1,
            "expires_at": expires,
            "ttl_seconds": 300,
            "reconnected": False,
            "token": token,
        }

    def answer(self, method: str, endpoint: str, body: Any) -> Answer:
        expires = (self.now + timedelta(seconds=300)).isoformat()
        if endpoint == "cloud/devices":
            return 201, {"device_id": DEVICE, "container_id": CONTAINER, "token": "lcd_x"}
        if endpoint == "cloud/check":
            token = self.token(ACCESS_TYP, scope=body.get("feature"))
            return 200, {"token": token, "license_id": "L-1", "expires_at": expires}
        if endpoint == "cloud/counters/consume":
            return 200, {
                "license_id": "L-1",
                "units": body["units"],
                "balance_after": 7,
                "key": body["key"],
                "replayed": False,
            }
        if endpoint in ("cloud/seats", f"cloud/seats/{LEASE}/heartbeat"):
            return (201 if endpoint == "cloud/seats" else 200), self.lease()
        if method == "DELETE":
            return 204, b""
        if endpoint == "cloud/borrow":
            return 201, self.borrow_answer(body)
        if endpoint == "cloud/borrow/returns":
            return 200, {"lease_id": LEASE, "state": "returned"}
        if endpoint == "cloud/redeem":
            return 201, {"container_id": CONTAINER, "credential": "lcc_a_b", "license_ids": []}
        if endpoint in ("devices/activate", "devices/sync"):
            return 200, self.update(body).encode()
        if endpoint == "devices/returns":
            return 200, {"license": "L-1", "state": "returned"}
        raise AssertionError(f"no such endpoint {method} {endpoint}")

    def borrow_answer(self, body: dict[str, Any]) -> dict[str, Any]:
        request = unverified_claims(body["request"])
        device = request["iss"]
        until = int((self.now + timedelta(days=2)).timestamp())
        claims = self.claims(
            aud=device,
            cnf={"jkt": device},
            lease=LEASE,
            fingerprint=request["fingerprint"],
            lease_until=until,
            exp=until,
            options={},
        )
        document = sign_document(claims, self.key, kid=self.kid, typ=BORROW_TYP)
        return {"lease_id": LEASE, "license_id": "L-1", "document": document}

    def update(self, token: bytes) -> str:
        claims = unverified_claims(token.decode())
        from licentia.formats.device import device_id, ed25519_from_jwk

        kid = device_id(ed25519_from_jwk(claims["device_key"]))
        request = Request(kid, claims["fingerprint"], b"", claims["seq"], dict(claims))
        documents = [self.bare.sign_license(self.bare.license_claims(request, Offer()))]
        self.bare.seq = claims["seq"]
        return self.bare.update(request, documents)


def _other_key_token(answer: Answer, vendor: FakeVendor) -> Answer:
    return _each_token(answer, lambda t: _resigned(t, Ed25519PrivateKey.generate(), vendor))


def _resigned(token: str, key: Ed25519PrivateKey, vendor: FakeVendor, **changes: Any) -> str:
    header = json.loads(_unb64(token.split(".")[0]))
    claims = dict(unverified_claims(token)) | changes
    return sign_document(claims, key, kid=vendor.kid, typ=header["typ"])


def _changed_claims(**changes: Any) -> Mutation:
    def mutate(answer: Answer, vendor: FakeVendor) -> Answer:
        return _each_token(answer, lambda t: _resigned(t, vendor.key, vendor, **changes))

    mutate.__name__ = "claims " + ",".join(changes)
    return mutate


def _each_token(answer: Answer, change: Callable[[str], str]) -> Answer:
    status, body = answer
    if isinstance(body, bytes):
        return status, change(body.decode()).encode() if body.count(b".") == 2 else body
    if isinstance(body, dict):
        return status, {k: change(v) if _is_jws(v) else v for k, v in body.items()}
    return answer


def _is_jws(value: Any) -> bool:
    return isinstance(value, str) and value.count(".") == 2


def _unb64(segment: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _fields_as(value: Any) -> Mutation:
    def mutate(answer: Answer, vendor: FakeVendor) -> Answer:
        status, body = answer
        if isinstance(body, dict):
            return status, dict.fromkeys(body, value)
        return status, json.dumps(value).encode()

    mutate.__name__ = f"fields {value!r}"[:40]
    return mutate


def _body(body: Any, status: int = 200) -> Mutation:
    def mutate(answer: Answer, vendor: FakeVendor) -> Answer:
        return status, body

    mutate.__name__ = f"{status} {body!r}"[:40]
    return mutate


def _truncated(answer: Answer, vendor: FakeVendor) -> Answer:
    return _each_token(answer, lambda t: t[: len(t) // 2])


def _flipped(answer: Answer, vendor: FakeVendor) -> Answer:
    return _each_token(answer, lambda t: t[:-3] + ("A" if t[-3] != "A" else "B") + t[-2:])


MUTATIONS: list[Mutation] = [
    _body(b"<html>not JSON</html>"),
    _body(["an", "array"]),
    _body({}),
    _body({"token": "a.b.c", "document": "a.b.c"}),
    _body(b"", 204),
    _body(b"", 302),
    _body({"code": 7, "detail": ["x"]}, 409),
    _body(b"\xff\xfe garbage", 500),
    _fields_as(None),
    _fields_as(10**30),
    _fields_as("9999-99-99"),
    _fields_as({"nested": []}),
    _fields_as(True),
    _truncated,
    _flipped,
    _other_key_token,
    _changed_claims(exp=1),  # expired long ago: an old answer handed back
    _changed_claims(iat=2**41, exp=2**41 + 300),
    _changed_claims(nbf=2**39),
    _changed_claims(product="OTHER"),
    _changed_claims(aud="another-container"),
    _changed_claims(iss="another-vendor"),
    _changed_claims(device="another-device"),
    _changed_claims(sub="L-other"),
    _changed_claims(lease="S-other", fence=9),
    _changed_claims(features="render"),
    _changed_claims(seq=-1, licenses="x"),
]
# Answers that must be refused outright (not merely possibly): a genuine token about
# something else, or no longer valid.
MUST_REFUSE = {m.__name__ for m in MUTATIONS if m.__name__.startswith("claims ")} - {
    "claims seq,licenses"
}


def cloud_client(tmp_path: Path, vendor: FakeVendor, transport: httpx.MockTransport) -> CloudClient:
    credential = CloudCredential("http://lc.test", "acme", CONTAINER, "lcc_a_b")
    return CloudClient(
        credential,
        public_keys={"keys": [public_jwk(vendor.key.public_key(), vendor.kid)]},
        state_dir=tmp_path / "state",
        transport=transport,
        retry=RetryPolicy(attempts=1),
        factor_source=lambda: dict(MACHINE),
    )


def license_client(tmp_path: Path, vendor: FakeVendor, transport: httpx.MockTransport):
    return LicenseClient(
        "http://lc.test",
        "acme",
        vendor.bare.jwks,
        store_dir=tmp_path / "device",
        factor_source=lambda: dict(MACHINE),
        virtualization_probe=Virtualization,
        transport=transport,
    )


def _seat(client: CloudClient) -> None:
    with client.seat("CAD", "render", user="ann", process="1") as seat:
        seat.heartbeat()
        seat.ensure()


def _borrowed(client: CloudClient) -> None:
    client.borrow("CAD", days=2, feature="render")
    client.borrowed("CAD", "render")
    client.check("CAD", "render")


def _redeem(tmp_path: Path, transport: httpx.MockTransport) -> None:
    from licentia.client import redeem_cloud_ticket

    redeem_cloud_ticket("http://lc.test", "acme", generate_ticket_code(), transport=transport)


CLOUD_CALLS: dict[str, tuple[str, Callable[[CloudClient], object]]] = {
    "register": ("cloud/devices", lambda c: c.register()),
    "check": ("cloud/check", lambda c: c.check("CAD", "render")),
    "consume": ("cloud/counters/consume", lambda c: c.consume("CAD", 3, key="job-1")),
    "seat checkout": ("cloud/seats", _seat),
    "seat heartbeat": (f"cloud/seats/{LEASE}/heartbeat", _seat),
    "seat release": (f"cloud/seats/{LEASE}", _seat),
    "borrow": ("cloud/borrow", _borrowed),
    "deregister": ("cloud/devices/current", lambda c: c.deregister()),
    "borrow return": ("cloud/borrow/returns", lambda c: c.submit_borrow_return("a.b.c")),
}


def transport_for(vendor: FakeVendor, target: str, mutation: Mutation) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        endpoint = path.split("/vendors/acme/", 1)[1]
        body: Any = request.content
        if request.headers.get("content-type") == "application/json":
            body = json.loads(request.content)
        answer = vendor.answer(request.method, endpoint, body)
        if endpoint == target:
            answer = mutation(answer, vendor)
        status, content = answer
        if isinstance(content, bytes):
            return httpx.Response(status, content=content)
        return httpx.Response(status, json=content)

    return httpx.MockTransport(handle)


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("call", CLOUD_CALLS, ids=str)
def test_every_cloud_call_raises_only_the_sdk_errors_for_a_hostile_answer(
    tmp_path: Path, call: str, mutation: Mutation
) -> None:
    vendor = FakeVendor()
    target, run = CLOUD_CALLS[call]
    client = cloud_client(tmp_path, vendor, transport_for(vendor, target, mutation))
    try:
        run(client)
    except LicentiaClientError as error:
        assert error.code and error.message
    else:
        refuse = MUST_REFUSE - ({"claims lease,fence"} if call == "check" else set())
        assert mutation.__name__ not in refuse or call in _NO_TOKEN_CALLS
    finally:
        client.close()


_NO_TOKEN_CALLS = {"register", "consume", "seat release", "deregister", "borrow return"}


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("endpoint", ["devices/activate", "devices/sync", "devices/returns"])
def test_every_device_call_raises_only_the_sdk_errors_for_a_hostile_answer(
    tmp_path: Path, endpoint: str, mutation: Mutation
) -> None:
    vendor = FakeVendor()
    client = license_client(tmp_path, vendor, transport_for(vendor, endpoint, mutation))
    try:
        client.activate(generate_ticket_code())
        client.sync()
        client.return_license("L-1")
    except LicentiaClientError as error:
        assert error.code and error.message
    finally:
        client.close()


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.__name__)
def test_redeeming_a_ticket_raises_only_the_sdk_errors_for_a_hostile_answer(
    tmp_path: Path, mutation: Mutation
) -> None:
    vendor = FakeVendor()
    try:
        _redeem(tmp_path, transport_for(vendor, "cloud/redeem", mutation))
    except LicentiaClientError as error:
        assert error.code and error.message


def test_an_expired_access_token_handed_back_is_refused_not_cached(tmp_path: Path) -> None:
    vendor = FakeVendor()
    vendor.now -= timedelta(hours=1)  # a genuine answer recorded an hour ago, replayed
    client = cloud_client(tmp_path, vendor, transport_for(vendor, "", _body({})))
    with pytest.raises(SignatureInvalidError, match="expired"):
        client.check("CAD", "render")


def test_a_genuine_token_for_another_product_is_not_the_answer_to_check(tmp_path: Path) -> None:
    vendor = FakeVendor()
    client = cloud_client(tmp_path, vendor, transport_for(vendor, "", _body({})))
    real_answer = vendor.answer

    def product_a_only(method: str, endpoint: str, body: Any) -> Answer:
        if endpoint == "cloud/check":
            body = body | {"product": "A"}
        status, answer = real_answer(method, endpoint, body)
        if endpoint == "cloud/check":
            answer["token"] = vendor.token(ACCESS_TYP, product="A", scope=None)
        return status, answer

    vendor.answer = product_a_only  # type: ignore[method-assign]
    with pytest.raises(SignatureInvalidError, match="product"):
        client.check("B")


def test_a_garbled_stored_borrow_is_a_reason_not_a_crash(tmp_path: Path) -> None:
    vendor = FakeVendor()
    client = cloud_client(tmp_path, vendor, transport_for(vendor, "", _body({})))
    client.borrow("CAD", days=2)
    (shelf,) = (tmp_path / "state" / "borrows").glob("*.jws")
    shelf.write_text("not.a.document!")
    with pytest.raises(LicentiaClientError):
        client.borrowed("CAD")
