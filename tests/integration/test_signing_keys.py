"""Signed license documents and the vendor keys that sign them.

What a customer's verifier does is the yardstick: fetch the vendor's JWKS from the
public endpoint (no credentials), pick the key named by the document's ``kid``, and
check the Ed25519 signature, here with jwcrypto (a JOSE implementation we do not use
ourselves) as well as with ``licentia.formats.verify_document``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from jwcrypto import jwk as jc_jwk
from jwcrypto import jws as jc_jws
from jwcrypto import jwt as jc_jwt
from sqlalchemy import select

from licentia.domain.errors import ConfigurationError
from licentia.domain.templates import TemplateOptions
from licentia.formats import SignatureInvalidError, verify_document
from licentia.server.keys.master import MasterKey
from licentia.server.keys.models import SigningKey
from licentia.server.keys.services import current_signer
from tests.factories import VendorHandle

TYP = "licentia-license+jwt"
TIME_LIMITED = {"validity": {"kind": "days_from_issue", "days": 30}}
CUSTOM: dict[str, Any] = {
    "public": "Thank you for buying PhotoPro",
    "protected": {"tier": "gold", "region": "EU"},
    "secret": "SECRET-ACTIVATION-SALT-4242",
}


# --- what a customer's verifier does ------------------------------------------------------


def fetch_jwks(vendor: VendorHandle) -> dict[str, Any]:
    response = vendor.client.get(f"/api/v1/vendors/{vendor.slug}/jwks.json")  # no credentials
    assert response.status_code == 200, response.text
    return dict(response.json())


def document(vendor: VendorHandle, license_id: str) -> str:
    response = vendor.get(f"/licenses/{license_id}/document")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/jose"
    return response.text


def jwcrypto_claims(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """Verify with jwcrypto alone: signature by a key of the set, exp and nbf."""
    verified = jc_jwt.JWT(
        jwt=token,
        key=jc_jwk.JWKSet.from_json(json.dumps(jwks)),
        algs=["Ed25519", "EdDSA"],
        expected_type="JWS",
    )
    return dict(json.loads(verified.claims))


def keys_of(jwks: dict[str, Any]) -> dict[str, Ed25519PublicKey]:
    return {
        key["kid"]: Ed25519PublicKey.from_public_bytes(unb64url(key["x"])) for key in jwks["keys"]
    }


def our_claims(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    return verify_document(token, keys_of(jwks), typ=TYP)


def assert_both_refuse(token: str, jwks: dict[str, Any]) -> None:
    with pytest.raises(SignatureInvalidError):
        our_claims(token, jwks)
    with pytest.raises(Exception) as refused:  # jwcrypto raises several types
        jwcrypto_claims(token, jwks)
    assert not isinstance(refused.value, AssertionError)


def header_of(token: str) -> dict[str, Any]:
    return dict(json.loads(unb64url(token.split(".")[0])))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def private_key_of(vendor: VendorHandle) -> tuple[str, Ed25519PrivateKey]:
    with vendor.database.read() as session:
        signer = current_signer(session, vendor.id, vendor.master)
    return signer.kid, signer.private_key


def rotate(vendor: VendorHandle) -> str:
    response = vendor.post("/signing-keys/rotate")
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "current"
    return str(response.json()["kid"])


def retire(vendor: VendorHandle, kid: str):
    return vendor.post(f"/signing-keys/{kid}/retire")


# --- the document ------------------------------------------------------------------------


def test_a_document_verifies_with_jwcrypto_and_the_public_jwks(vendors):
    vendor = vendors.create()
    license_ = vendor.license(TIME_LIMITED)
    token = document(vendor, license_["id"])
    jwks = fetch_jwks(vendor)
    assert jwcrypto_claims(token, jwks) == our_claims(token, jwks)
    (published,) = jwks["keys"]
    assert header_of(token) == {"alg": "Ed25519", "kid": published["kid"], "typ": TYP}
    assert {k: published[k] for k in ("kty", "crv", "alg", "use")} == {
        "kty": "OKP",
        "crv": "Ed25519",
        "alg": "Ed25519",
        "use": "sig",
    }
    assert "d" not in published


def test_the_claims_name_issuer_subject_times_product_features_and_options(vendors):
    vendor = vendors.create()
    license_ = vendor.license({**TIME_LIMITED, "maintenance_days": 90, "custom_data": CUSTOM})
    before = int(time.time())
    claims = jwcrypto_claims(document(vendor, license_["id"]), fetch_jwks(vendor))
    assert claims["iss"] == vendor.slug
    assert claims["sub"] == license_["id"]
    assert before - 1 <= claims["iat"] <= time.time() + 1
    assert claims["nbf"] == int(datetime.fromisoformat(license_["issued_at"]).timestamp())
    assert claims["exp"] == int(datetime.fromisoformat(license_["valid_until"]).timestamp())
    assert claims["maintenance_until"] == int(
        datetime.fromisoformat(license_["maintenance_until"]).timestamp()
    )
    assert (claims["product"], claims["features"]) == (license_["product_code"], ["edit", "export"])
    assert (claims["state"], claims["ver"]) == ("available", 1)
    assert isinstance(claims["jti"], str)
    assert set(claims["options"]) == set(TemplateOptions.model_fields) - {"custom_data"}
    validity = {"kind": "days_from_issue", "days": 30, "end_date": None}
    assert claims["options"]["validity"] == validity
    assert claims["public_data"] == CUSTOM["public"]
    assert claims["protected_data"] == CUSTOM["protected"]


def test_secret_custom_data_never_appears_in_a_document(vendors):
    vendor = vendors.create()
    license_ = vendor.license({"custom_data": CUSTOM})
    token = document(vendor, license_["id"])
    decoded = b"".join(unb64url(part) for part in token.split("."))
    assert CUSTOM["secret"].encode() not in decoded
    assert "secret" not in json.dumps(our_claims(token, fetch_jwks(vendor)))


def test_a_perpetual_license_has_no_exp_and_each_rendering_a_fresh_jti(vendors):
    vendor = vendors.create()
    license_ = vendor.license()
    jwks = fetch_jwks(vendor)
    first = jwcrypto_claims(document(vendor, license_["id"]), jwks)
    second = jwcrypto_claims(document(vendor, license_["id"]), jwks)
    assert "exp" not in first
    assert first["jti"] != second["jti"]


def test_an_expired_licenses_document_is_refused_by_a_verifier_that_checks_exp(vendors):
    vendor = vendors.create()
    license_ = vendor.expired_license()
    token = document(vendor, license_["id"])
    jwks = fetch_jwks(vendor)
    assert our_claims(token, jwks)["state"] == "expired"
    with pytest.raises(jc_jwt.JWTExpired):
        jwcrypto_claims(token, jwks)


@pytest.mark.parametrize(
    ("action", "state"),
    [("suspend", "suspended"), ("withdraw", "withdrawn"), ("replace", "replaced")],
)
def test_a_license_that_cannot_be_used_has_no_document(vendors, action, state):
    vendor = vendors.create()
    license_ = vendor.license()
    assert vendor.post(f"/licenses/{license_['id']}/actions/{action}").status_code == 200
    response = vendor.get(f"/licenses/{license_['id']}/document")
    assert response.status_code == 409
    assert response.json()["code"] == "LICENSE_NOT_USABLE"
    assert response.json()["current_state"] == state


def test_another_vendors_license_has_no_document_for_you(vendors):
    vendor, other = vendors.create(), vendors.create()
    license_ = vendor.license()
    assert other.get(f"/licenses/{license_['id']}/document").status_code == 404


# --- forgeries ----------------------------------------------------------------------------


def test_a_flipped_payload_byte_is_refused(vendors):
    vendor = vendors.create()
    token = document(vendor, vendor.license()["id"])
    header, payload, signature = token.split(".")
    raw = bytearray(unb64url(payload))
    raw[raw.index(b'"sub"') + 8] ^= 0x01  # one character of the license id
    assert_both_refuse(f"{header}.{b64url(bytes(raw))}.{signature}", fetch_jwks(vendor))


def test_a_document_does_not_verify_with_another_vendors_keys(vendors):
    vendor, other = vendors.create(), vendors.create()
    token = document(vendor, vendor.license()["id"])
    assert_both_refuse(token, fetch_jwks(other))


def test_another_vendors_key_cannot_sign_under_this_vendors_kid(vendors):
    vendor, other = vendors.create(), vendors.create()
    genuine = document(vendor, vendor.license()["id"])
    _, foreign_key = private_key_of(other)
    forged = jc_jws.JWS(unb64url(genuine.split(".")[1]))
    forged.add_signature(
        jc_jwk.JWK.from_pyca(foreign_key), None, protected=json.dumps(header_of(genuine))
    )
    assert_both_refuse(str(forged.serialize(compact=True)), fetch_jwks(vendor))


def test_alg_none_and_hmac_keyed_with_the_published_key_are_refused(vendors):
    vendor = vendors.create()
    genuine = document(vendor, vendor.license()["id"])
    jwks = fetch_jwks(vendor)
    kid, payload = header_of(genuine)["kid"], genuine.split(".")[1]
    public_x = jwks["keys"][0]["x"]
    none = b64url(json.dumps({"alg": "none", "kid": kid, "typ": TYP}).encode())
    assert_both_refuse(f"{none}.{payload}.", jwks)
    for secret in (unb64url(public_x), public_x.encode()):
        hs = b64url(json.dumps({"alg": "HS256", "kid": kid, "typ": TYP}).encode())
        mac = hmac.new(secret, f"{hs}.{payload}".encode(), hashlib.sha256).digest()
        assert_both_refuse(f"{hs}.{payload}.{b64url(mac)}", jwks)


def test_a_document_signed_under_the_deprecated_eddsa_name_verifies(vendors):
    vendor = vendors.create()
    genuine = document(vendor, vendor.license()["id"])
    kid, private = private_key_of(vendor)
    claims = json.loads(unb64url(genuine.split(".")[1]))
    older = jc_jws.JWS(json.dumps(claims).encode())
    older.add_signature(
        jc_jwk.JWK.from_pyca(private),
        None,
        protected=json.dumps({"alg": "EdDSA", "kid": kid, "typ": TYP}),
    )
    token = str(older.serialize(compact=True))
    with pytest.warns(Warning, match="EdDSA"):
        assert our_claims(token, fetch_jwks(vendor)) == claims


# --- rotation -----------------------------------------------------------------------------


def test_after_rotation_new_documents_use_the_new_key_and_old_ones_still_verify(vendors):
    vendor = vendors.create()
    license_id = vendor.license()["id"]
    old_document = document(vendor, license_id)
    old_kid = header_of(old_document)["kid"]
    new_kid = rotate(vendor)
    new_document = document(vendor, license_id)
    assert header_of(new_document)["kid"] == new_kid != old_kid
    listed = {k["kid"]: k["status"] for k in vendor.ok("GET", "/signing-keys")["items"]}
    assert listed == {old_kid: "previous", new_kid: "current"}
    jwks = fetch_jwks(vendor)
    assert {k["kid"] for k in jwks["keys"]} == {old_kid, new_kid}
    for token in (old_document, new_document):
        assert jwcrypto_claims(token, jwks)["sub"] == license_id
        assert our_claims(token, jwks)["sub"] == license_id


def test_a_retired_key_leaves_the_jwks_and_its_documents_stop_verifying(vendors):
    vendor = vendors.create()
    license_id = vendor.license()["id"]
    old_document = document(vendor, license_id)
    old_kid = header_of(old_document)["kid"]
    new_kid = rotate(vendor)
    retired = retire(vendor, old_kid)
    assert retired.status_code == 200, retired.text
    assert retired.json()["status"] == "retired"
    assert retired.json()["retired_at"] is not None
    jwks = fetch_jwks(vendor)
    assert [k["kid"] for k in jwks["keys"]] == [new_kid]
    assert_both_refuse(old_document, jwks)
    assert our_claims(document(vendor, license_id), jwks)["sub"] == license_id


def test_the_current_key_cannot_be_retired(vendors):
    vendor = vendors.create()
    current = header_of(document(vendor, vendor.license()["id"]))["kid"]
    response = retire(vendor, current)
    assert response.status_code == 409
    assert response.json()["code"] == "KEY_IS_CURRENT"
    assert [k["kid"] for k in fetch_jwks(vendor)["keys"]] == [current]


def test_retiring_an_unknown_or_foreign_key_is_not_found(vendors):
    vendor, other = vendors.create(), vendors.create()
    foreign = next(k["kid"] for k in other.ok("GET", "/signing-keys")["items"])
    other_kid_before = rotate(other)
    for kid in ("k-unknown", foreign):
        assert retire(vendor, kid).status_code == 404
    assert other_kid_before in {k["kid"] for k in fetch_jwks(other)["keys"]}
    assert foreign in {k["kid"] for k in fetch_jwks(other)["keys"]}


def test_rotating_and_retiring_are_audited(vendors):
    vendor = vendors.create()
    old = vendor.ok("GET", "/signing-keys")["items"][0]["kid"]
    new = rotate(vendor)
    retire(vendor, old)
    events = vendor.ok("GET", "/audit-events", params={"object_type": "signing_key"})["items"]
    assert [(e["action"], e["object_id"], e["after"]) for e in events[-2:]] == [
        ("signing_key.created", new, {"status": "current"}),
        ("signing_key.retired", old, {"status": "retired"}),
    ]
    assert events[-1]["before"] == {"status": "previous"}


def test_concurrent_rotations_leave_exactly_one_current_key(vendors):
    vendor = vendors.create()
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda _: vendor.post("/signing-keys/rotate"), range(8)))
    statuses = [response.status_code for response in responses]
    assert statuses == [201] * 8
    listed = [k["status"] for k in vendor.ok("GET", "/signing-keys")["items"]]
    assert listed.count("current") == 1
    assert listed.count("previous") == 8


# --- keys at rest and vendors without keys -------------------------------------------


def test_private_keys_are_stored_encrypted_under_the_master_key(vendors):
    vendor = vendors.create()
    kid, private = private_key_of(vendor)
    raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    with vendor.database.read() as session:
        stored = session.scalar(select(SigningKey).where(SigningKey.kid == kid))
        assert stored is not None
    assert raw not in stored.private_key_encrypted
    assert len(stored.private_key_encrypted) > len(raw)
    with pytest.raises(ConfigurationError):
        MasterKey(b"\x01" * 32).decrypt(stored.private_key_encrypted, purpose="signing-key")
    assert vendor.master.decrypt(stored.private_key_encrypted, purpose="signing-key") == raw


def test_a_vendor_without_a_key_gets_no_document_until_it_rotates_one_in(vendors):
    vendor = vendors.create(signing_key=False)
    license_id = vendor.license()["id"]
    response = vendor.get(f"/licenses/{license_id}/document")
    assert response.status_code == 409
    assert response.json()["code"] == "NO_SIGNING_KEY"
    assert fetch_jwks(vendor) == {"keys": []}
    kid = rotate(vendor)
    assert header_of(document(vendor, license_id))["kid"] == kid


def test_the_jwks_of_an_unknown_vendor_is_not_found(vendors):
    vendor = vendors.create()
    assert vendor.client.get("/api/v1/vendors/no-such-vendor/jwks.json").status_code == 404
