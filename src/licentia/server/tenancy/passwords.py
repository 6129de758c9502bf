"""Passwords of everyone who logs in (vendor staff, customer users): one rule, one hash."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from licentia.domain.errors import ServerBusyError, ValidationError

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


class PasswordChecks:
    """At most ``limit`` password checks at a time in this process; one more is refused
    at once (ServerBusyError ``LOGINS_BUSY``) rather than queued. A check takes some
    64 MiB and tens of milliseconds of CPU: a flood of logins must not take the memory
    and the threads everyone else needs."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._slots = threading.BoundedSemaphore(limit)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the slots; raises ServerBusyError at once if none is free."""
        if not self._slots.acquire(blocking=False):
            raise ServerBusyError(
                "too many logins are being checked at once; try again in a moment",
                code="LOGINS_BUSY",
            )
        try:
            yield
        finally:
            self._slots.release()

    def matches(self, stored: str | None, password: str) -> bool:
        """:func:`password_matches`, in a slot."""
        with self.slot():
            return password_matches(stored, password)
