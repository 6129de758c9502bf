"""Passwords of everyone who logs in (vendor staff, customer users): one rule, one hash."""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from licentia.domain.errors import ServerBusyError, ValidationError

MIN_LENGTH = 10
_hasher = PasswordHasher()  # argon2id with the library's current recommended cost
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
HASHING_NICENESS = 10  # a tenth of a normal thread's share when the cores are contended
_T = TypeVar("_T")


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
    and the threads everyone else needs.

    The hashes run on threads of their own at the lowest scheduling priority (where
    the system lets a thread lower its own, as Linux does): when logins from many
    addresses keep every slot busy, the cores still go first to the requests of
    everyone else, and the logins take what is left."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._slots = threading.BoundedSemaphore(limit)
        self._hashing = ThreadPoolExecutor(
            limit, thread_name_prefix="licentia-passwords", initializer=_lower_priority
        )

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

    def run(self, work: Callable[[], _T]) -> _T:
        """``work`` (a hash or a check) in a slot, on a low-priority hashing thread."""
        with self.slot():
            return self._hashing.submit(work).result()

    def matches(self, stored: str | None, password: str) -> bool:
        """:func:`password_matches`, in a slot."""
        return self.run(lambda: password_matches(stored, password))


def _lower_priority() -> None:
    # On Linux a thread is a task of its own: PRIO_PROCESS with the thread's id renices
    # this thread alone. Elsewhere the call may not exist or may renice the process.
    if not hasattr(os, "setpriority") or not sys.platform.startswith("linux"):
        return
    # A sandbox may refuse it: the hashes then run at normal priority.
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICENESS)
