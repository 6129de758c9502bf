"""Signed documents (licentia.formats): Ed25519 compact JWS that any JOSE library reads.

jwcrypto is an independent JOSE implementation; where it agrees with our verifier, a
vendor's customers can verify our documents in any language.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st
from jwcrypto import jwk as jc_jwk
from jwcrypto import jws as jc_jws

from licentia.formats import (
    ACCEPTED_ALGORITHMS,
    ALGORITHM,
    SignatureInvalidError,
    public_jwk,
    sign_document,
    verify_document,
)
from licentia.formats.jws import MAX_JSON_DEPTH, parse_json

TYP = "licentia-license+jwt"
KID = "k-test"
CLAIMS = {"iss": "acme", "sub": "lic-1", "iat": 1_900_000_000, "features": ["edit"]}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def segments(token: str) -> tuple[dict, dict, bytes]:
    header, payload, signature = token.split(".")
    return json.loads(unb64url(header)), json.loads(unb64url(payload)), unb64url(signature)


def jwcrypto_key(private: Ed25519PrivateKey) -> jc_jwk.JWK:
    return jc_jwk.JWK.from_pyca(private)


@pytest.fixture
def private() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def keys(private):
    return {KID: private.public_key()}


def test_a_document_is_a_compact_jws_with_the_ed25519_header(private):
    token = sign_document(CLAIMS, private, kid=KID, typ=TYP)
    header, payload, signature = segments(token)
    assert header == {"alg": "Ed25519", "kid": KID, "typ": TYP}
    assert payload == CLAIMS
    assert len(signature) == 64
    assert ALGORITHM == "Ed25519"
    assert set(ACCEPTED_ALGORITHMS) == {"Ed25519", "EdDSA"}


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.one_of(st.integers(), st.text(max_size=20), st.lists(st.text(max_size=5))),
        max_size=6,
    )
)
def test_whatever_claims_are_signed_verify_back_unchanged(claims):
    private = Ed25519PrivateKey.generate()
    token = sign_document(claims, private, kid=KID, typ=TYP)
    assert verify_document(token, {KID: private.public_key()}, typ=TYP) == claims


def test_the_public_jwk_is_an_rfc_8037_okp_key_without_private_parts(private):
    jwk = public_jwk(private.public_key(), KID)
    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert jwk == {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url(raw),
        "kid": KID,
        "alg": "Ed25519",
        "use": "sig",
    }
    assert "=" not in jwk["x"]


def test_jwcrypto_verifies_our_document_with_our_published_jwk(private):
    token = sign_document(CLAIMS, private, kid=KID, typ=TYP)
    key = jc_jwk.JWK(**public_jwk(private.public_key(), KID))
    verifier = jc_jws.JWS()
    verifier.deserialize(token)
    verifier.verify(key, alg="Ed25519")
    assert json.loads(verifier.payload) == CLAIMS


def test_we_verify_a_document_that_jwcrypto_signed_with_the_standard_alg_name(private, keys):
    token = jwcrypto_sign(private, {"alg": "Ed25519", "kid": KID, "typ": TYP})
    assert verify_document(token, keys, typ=TYP) == CLAIMS


def test_the_deprecated_eddsa_name_for_the_same_algorithm_is_accepted(private, keys):
    token = jwcrypto_sign(private, {"alg": "EdDSA", "kid": KID, "typ": TYP})
    assert verify_document(token, keys, typ=TYP) == CLAIMS


def jwcrypto_sign(private: Ed25519PrivateKey, header: dict) -> str:
    signer = jc_jws.JWS(json.dumps(CLAIMS).encode())
    signer.add_signature(jwcrypto_key(private), None, protected=json.dumps(header))
    return str(signer.serialize(compact=True))


# --- what must be refused ---------------------------------------------------------------


def assert_refused(token: str | bytes, keys, typ: str = TYP) -> None:
    with pytest.raises(SignatureInvalidError):
        verify_document(token, keys, typ=typ)


def test_a_flipped_byte_anywhere_in_the_payload_is_refused(private, keys):
    token = sign_document(CLAIMS, private, kid=KID, typ=TYP)
    header, payload, signature = token.split(".")
    raw = unb64url(payload)
    for index in range(len(raw)):
        flipped = bytearray(raw)
        flipped[index] ^= 0x01
        assert_refused(f"{header}.{b64url(bytes(flipped))}.{signature}", keys)


def test_a_flipped_signature_byte_is_refused(private, keys):
    header, payload, signature = sign_document(CLAIMS, private, kid=KID, typ=TYP).split(".")
    raw = bytearray(unb64url(signature))
    raw[10] ^= 0x80
    assert_refused(f"{header}.{payload}.{b64url(bytes(raw))}", keys)


def test_a_signature_spelled_with_other_unused_bits_is_refused(private, keys):
    # 64 bytes are 86 symbols whose last one carries 4 unused bits: a changed symbol
    # that decodes to the same bytes would still be a changed document.
    head, payload, signature = sign_document({"n": 1}, private, kid=KID, typ=TYP).split(".")
    for symbol in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_":
        if symbol != signature[-1]:
            with pytest.raises(SignatureInvalidError):
                verify_document(f"{head}.{payload}.{signature[:-1]}{symbol}", keys, typ=TYP)


def test_a_document_signed_by_another_key_under_a_known_kid_is_refused(keys):
    impostor = Ed25519PrivateKey.generate()
    assert_refused(sign_document(CLAIMS, impostor, kid=KID, typ=TYP), keys)


def test_a_document_naming_an_unknown_kid_is_refused(private, keys):
    assert_refused(sign_document(CLAIMS, private, kid="k-other", typ=TYP), keys)


def test_a_document_of_another_type_is_refused(private, keys):
    token = sign_document(CLAIMS, private, kid=KID, typ="licentia-seat+jwt")
    assert_refused(token, keys)


def test_an_unsigned_document_with_alg_none_is_refused(keys):
    header = b64url(json.dumps({"alg": "none", "kid": KID, "typ": TYP}).encode())
    payload = b64url(json.dumps(CLAIMS).encode())
    assert_refused(f"{header}.{payload}.", keys)


def test_hmac_keyed_with_the_public_key_bytes_is_refused(private, keys):
    # The "key confusion" forgery: anyone holding the public key could compute this.
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    for public_form in (public, b64url(public).encode()):
        header = b64url(json.dumps({"alg": "HS256", "kid": KID, "typ": TYP}).encode())
        payload = b64url(json.dumps(CLAIMS).encode())
        mac = hmac.new(public_form, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        assert_refused(f"{header}.{payload}.{b64url(mac)}", keys)


@pytest.mark.parametrize(
    "token",
    ["", "not-a-jws", "a.b", "a.b.c.d", "!!!.@@@.###", b"\xff\xfe.x.y"],
    ids=["empty", "one-part", "two-parts", "four-parts", "not-base64", "not-ascii"],
)
def test_malformed_input_is_refused_with_the_same_error(token, keys):
    assert_refused(token, keys)


def test_a_payload_that_is_not_a_json_object_is_refused(private, keys):
    header = {"alg": "Ed25519", "kid": KID, "typ": TYP}
    signer = jc_jws.JWS(b"[1, 2, 3]")
    signer.add_signature(jwcrypto_key(private), None, protected=json.dumps(header))
    assert_refused(str(signer.serialize(compact=True)), keys)


def test_critical_and_unencoded_payload_headers_are_refused(private, keys):
    for extra in ({"crit": ["exp"], "exp": 1}, {"b64": False, "crit": ["b64"]}, {"b64": False}):
        header = b64url(json.dumps({"alg": "Ed25519", "kid": KID, "typ": TYP, **extra}).encode())
        payload = b64url(json.dumps(CLAIMS).encode())
        signature = private.sign(f"{header}.{payload}".encode())
        assert_refused(f"{header}.{payload}.{b64url(signature)}", keys)


def test_padding_or_stray_characters_in_a_segment_are_refused(private, keys):
    header, payload, signature = sign_document(CLAIMS, private, kid=KID, typ=TYP).split(".")
    for forged in (f"{header}.{payload}==.{signature}", f"{header}.{payload}.{signature} "):
        assert_refused(forged, keys)
    assert_refused(f"{header}.{payload}.{signature[:-4]}", keys)  # a truncated signature


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        ({"alg": "Ed25519", "kid": KID, "typ": TYP}, True),  # as sign_document writes it
        ({"typ": TYP, "kid": KID, "alg": "Ed25519"}, True),
        ({"alg": "Ed25519", "kid": KID, "typ": "licentia-seat+jwt"}, False),
        ({"alg": "Ed25519", "kid": "k-unknown", "typ": TYP}, False),
        ({"alg": "Ed25519", "kid": KID, "typ": TYP, "crit": ["exp"]}, False),
    ],
)
def test_a_header_is_checked_alike_whatever_its_layout(private, keys, header, accepted):
    for separators in ((",", ":"), (", ", ": ")):
        encoded = b64url(json.dumps(header, separators=separators).encode())
        payload = b64url(json.dumps(CLAIMS).encode())
        signature = b64url(private.sign(f"{encoded}.{payload}".encode()))
        token = f"{encoded}.{payload}.{signature}"
        if accepted:
            assert verify_document(token, keys, typ=TYP) == CLAIMS
        else:
            assert_refused(token, keys)


def test_a_batch_sharing_its_checked_headers_still_checks_every_document(private, keys):
    approved: dict = {}
    genuine = sign_document(CLAIMS, private, kid=KID, typ=TYP)
    assert verify_document(genuine, keys, typ=TYP, approved_headers=approved) == CLAIMS

    # The same header with another signer, then other headers, after the genuine one.
    stranger = sign_document(CLAIMS, Ed25519PrivateKey.generate(), kid=KID, typ=TYP)
    other_type = sign_document(CLAIMS, private, kid=KID, typ="licentia-seat+jwt")
    header = b64url(json.dumps({"alg": "none", "kid": KID, "typ": TYP}).encode())
    unsigned = f"{header}.{b64url(json.dumps(CLAIMS).encode())}."
    for forged in (stranger, other_type, unsigned):
        with pytest.raises(SignatureInvalidError):
            verify_document(forged, keys, typ=TYP, approved_headers=approved)


def _nested(depth: int, inner: bytes = b"1") -> bytes:
    return b'{"a":' * depth + inner + b"}" * depth


@pytest.mark.parametrize("where", ["header", "payload"])
def test_json_nested_beyond_the_limit_is_refused_before_it_is_parsed(private, where):
    deep = b"[" * 5000 + b"]" * 5000
    header, payload = b'{"alg":"Ed25519","kid":"k-test","typ":"licentia-license+jwt"}', deep
    if where == "header":
        header, payload = deep, b"{}"
    signing_input = f"{b64url(header)}.{b64url(payload)}"
    token = f"{signing_input}.{b64url(private.sign(signing_input.encode()))}"
    with pytest.raises(SignatureInvalidError, match="nests deeper"):
        verify_document(token, {KID: private.public_key()}, typ=TYP)


@pytest.mark.parametrize(
    ("raw", "accepted"),
    [
        (_nested(MAX_JSON_DEPTH), True),
        (_nested(MAX_JSON_DEPTH + 1), False),
        (b"[" + b"[]," * 500 + b"[]]", True),  # many brackets, shallow
        (_nested(MAX_JSON_DEPTH, b'"' + b"[" * 100 + b'"'), True),  # brackets in a string
        (_nested(MAX_JSON_DEPTH, b'"\\"' + b"{" * 100 + b'"'), True),  # after an escaped quote
        (_nested(MAX_JSON_DEPTH, b'"\\\\"'), True),  # an escaped backslash ends the string
        (_nested(MAX_JSON_DEPTH - 1, b'["\\\\", [' + b"1" + b"]]"), False),
    ],
)
def test_the_depth_limit_counts_only_brackets_outside_strings(raw, accepted):
    if accepted:
        assert parse_json(raw) == json.loads(raw)
    else:
        with pytest.raises(ValueError, match="nests deeper"):
            parse_json(raw)


def _depth(value: object) -> int:
    return 1 + max(map(_depth, value), default=0) if isinstance(value, list) else 0


@given(st.recursive(st.integers() | st.text(), lambda inner: st.lists(inner, max_size=2)))
def test_parse_json_reads_what_json_reads_within_the_limit(value):
    raw = json.dumps(value).encode()
    if _depth(value) <= MAX_JSON_DEPTH:
        assert parse_json(raw) == value
    else:
        with pytest.raises(ValueError, match="nests deeper"):
            parse_json(raw)
