"""The client's keyed HMAC and key derivation give what the standard ones give."""

from __future__ import annotations

import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given
from hypothesis import strategies as st

from licentia.client._mac import HmacSha256
from licentia.client._store_records import derive_key

# Keys of every length around SHA-256's 64-byte block: shorter keys are padded,
# longer ones hashed first.
keys = st.binary(min_size=0, max_size=150)
messages = st.binary(max_size=3000)


@given(key=keys, batch=st.lists(messages, max_size=5))
def test_one_key_macs_many_messages_independently(key: bytes, batch: list[bytes]) -> None:
    mac = HmacSha256(key)

    assert [mac.hexdigest(message) for message in batch] == [
        hmac.new(key, message, "sha256").hexdigest() for message in batch
    ]


@given(secret=st.binary(min_size=32, max_size=32), info=st.binary(max_size=40))
def test_the_store_key_derivation_is_the_standard_hkdf(secret: bytes, info: bytes) -> None:
    standard = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info)

    assert derive_key(secret, info) == standard.derive(secret)
