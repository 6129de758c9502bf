"""This device's registration to a cloud container, kept on disk.

Registering exchanges the container credential for a device token (``lcd_…``), and
each registration counts against the container's device limit, so a device registers
once and keeps the token in ``<state>/registration.json`` (permissions 0600)::

    {"device_id": "…", "container_id": "…", "token": "lcd_…",
     "credential_sha256": "<hex SHA-256 of the credential it was made with>"}

Every process of the application on this machine shares that file: registering
happens under an exclusive lock on ``<state>/.lock``, so two processes starting at once
do not register twice. A registration made with another credential (the ``.licred``
file was replaced after a credential reset) is not used: the device registers again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from licentia.client._cloud_api import CloudApi
from licentia.client._exceptions import NetworkError, ServerError
from licentia.client._files import lock, write_atomic
from licentia.client._licred import CloudCredential
from licentia.client._retry import RetryPolicy, retry_call
from licentia.client._tokens import field

__all__ = ["DeviceSession", "Registration", "RegistrationFile", "credential_digest"]


def credential_digest(credential: str) -> str:
    return hashlib.sha256(credential.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Registration:
    device_id: str
    container_id: str
    token: str
    credential_sha256: str

    def __repr__(self) -> str:
        return f"Registration(device_id={self.device_id!r}, token='lcd_…')"


class RegistrationFile:
    """``registration.json`` in ``directory`` and the lock that serialises registering."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / "registration.json"

    def read(self) -> Registration | None:
        """The stored registration, or None if there is none (or it is unreadable)."""
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
            return Registration(
                device_id=str(document["device_id"]),
                container_id=str(document["container_id"]),
                token=str(document["token"]),
                credential_sha256=str(document["credential_sha256"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def write(self, registration: Registration) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(self.path, json.dumps(asdict(registration)).encode("utf-8"))
        os.chmod(self.path, 0o600)

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the exclusive registration lock (other processes wait)."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            lock(fd, exclusive=True)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock


class DeviceSession:
    """Authenticated calls as this device: registers on first use (once per machine,
    see the module docstring) and recovers from a registration the server forgot."""

    def __init__(
        self,
        api: CloudApi,
        credential: CloudCredential,
        registrations: RegistrationFile,
        *,
        name: str,
        retry: RetryPolicy,
    ) -> None:
        self._api = api
        self._credential = credential
        self._registrations = registrations
        self._name = name
        self._retry = retry
        self._lock = threading.RLock()
        self._registration: Registration | None = None

    def registration(self) -> Registration:
        """The registration for the current credential, registering if there is none.
        Raises CredentialInvalidError, DeviceLimitReachedError and NetworkError."""
        with self._lock:
            if self._registration is None:
                with self._registrations.locked():
                    stored = self._registrations.read()
                    if stored is None or not self._matches(stored):
                        stored = self._register()
                        self._registrations.write(stored)
                self._registration = stored
            return self._registration

    def forget(self) -> None:
        """Drop the registration here and on disk (the next call registers again)."""
        with self._lock, self._registrations.locked():
            self._registration = None
            self._registrations.remove()

    def call(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """One authenticated call (one attempt). A token License Central no longer knows
        registers the device again, once; a credential reset forgets the registration
        and raises CredentialResetError; a deregistration raises, and stays."""
        token = self.registration().token
        try:
            return self._api.call(method, path, token=token, body=body, timeout=timeout)
        except ServerError as error:
            if error.status == 401 and error.server_code in (None, "UNAUTHENTICATED"):
                self.forget()
                token = self.registration().token
                return self._api.call(method, path, token=token, body=body, timeout=timeout)
            if error.server_code == "CREDENTIAL_RESET":
                self.forget()
            raise

    def _matches(self, registration: Registration) -> bool:
        return (
            registration.container_id == self._credential.container_id
            and registration.credential_sha256 == credential_digest(self._credential.credential)
        )

    def _register(self) -> Registration:
        body = {"credential": self._credential.credential, "name": self._name}
        answer = retry_call(
            lambda: self._api.call("POST", "devices", body=body),
            self._retry,
            transient=_surely_not_registered,
        )
        return Registration(
            device_id=field(answer, "device_id", str),
            container_id=field(answer, "container_id", str),
            token=field(answer, "token", str),
            credential_sha256=credential_digest(self._credential.credential),
        )


def _surely_not_registered(error: Exception) -> bool:
    """A registration is not idempotent on the server: retry only failures where the
    request cannot have registered (no connection made, or a 5xx rollback)."""
    if isinstance(error, NetworkError):
        import httpx  # a NetworkError's cause is httpx's, so httpx is loaded already

        return isinstance(error.__cause__, httpx.ConnectError | httpx.ConnectTimeout)
    return isinstance(error, ServerError) and (error.status or 0) >= 500
