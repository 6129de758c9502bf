"""Passwords of everyone who logs in (vendor staff, customer users): one rule, one hash."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from licentia.domain.errors import ValidationError

MIN_LENGTH = 10
_hasher = PasswordHasher()  # argon2id with the library's current recommended cost
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def check_password_rule(password: str) -> None:
    """Raises ValidationError (field ``password``) for a password too short."""
    if len(password) < MIN_LENGTH:
        raise ValidationError(f"a password has at least {MIN_LENGTH} characters", field="password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored``. With no stored hash (an unknown user)
    the same hashing work is done, so the time taken reveals nothing."""
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False
