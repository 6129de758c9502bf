"""Signed document formats shared by the server and the client SDK.

Pure: depends only on ``cryptography``, so the client SDK can use it
without any server dependency. docs/formats.md is the written specification.
"""

from licentia.formats.jws import (
    ACCEPTED_ALGORITHMS,
    ALGORITHM,
    SignatureInvalidError,
    public_jwk,
    sign_document,
    verify_document,
)

__all__ = [
    "ACCEPTED_ALGORITHMS",
    "ALGORITHM",
    "SignatureInvalidError",
    "public_jwk",
    "sign_document",
    "verify_document",
]
