"""The ``.licred`` credential file of a cloud container.

A ``.licred`` file is what a customer admin downloads from the License Portal (or
what :func:`redeem_cloud_ticket` returns) and hands to the users of a cloud container.
It is a UTF-8 JSON object::

    {
      "licred": 1,
      "server_url": "https://licenses.example.com",
      "vendor": "acme",
      "container_id": "0190c3b2-…",
      "credential": "lcc_3f9a1c2b7d4e_…"
    }

``licred`` is the format version (optional, 1 if absent; a newer version is refused
rather than misread); other unknown keys are ignored. ``credential`` is a secret: it
registers devices to the container (up to the container's device limit), so the file
is written with permissions 0600. A credential reset on the server replaces it; the
old file then answers ``CREDENTIAL_INVALID`` and devices registered with it
``CREDENTIAL_RESET``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from licentia import __version__
from licentia.client._exceptions import NetworkError, ServerError, error_from_problem
from licentia.client._files import write_atomic

if TYPE_CHECKING:
    import httpx

__all__ = ["LICRED_VERSION", "CloudCredential", "redeem_cloud_ticket"]

LICRED_VERSION = 1
_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_CONTAINER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")  # also names a directory


@dataclass(frozen=True)
class CloudCredential:
    """The content of a ``.licred`` file; see the module docstring."""

    server_url: str
    vendor: str
    container_id: str
    credential: str

    def __post_init__(self) -> None:
        scheme = urlsplit(self.server_url).scheme
        if scheme not in ("http", "https") or not urlsplit(self.server_url).netloc:
            raise ValueError(f"server_url {self.server_url!r} is not an http(s) URL")
        if not _SLUG.fullmatch(self.vendor):
            raise ValueError(f"vendor {self.vendor!r} is not a vendor slug")
        if not _CONTAINER_ID.fullmatch(self.container_id):
            raise ValueError(f"container_id {self.container_id!r} is not a container id")
        if not self.credential.startswith("lcc_"):
            raise ValueError("the credential of a .licred file starts with lcc_")

    def __repr__(self) -> str:
        # The credential is a secret: keep it out of logs and tracebacks.
        return (
            f"CloudCredential(server_url={self.server_url!r}, vendor={self.vendor!r}, "
            f"container_id={self.container_id!r}, credential='lcc_…')"
        )

    @classmethod
    def from_json(cls, text: str) -> CloudCredential:
        """Read the JSON text of a ``.licred`` file; raises ValueError if it is not one."""
        try:
            document = json.loads(text)
        except ValueError as error:
            raise ValueError(f"not a .licred file: {error}") from error
        if not isinstance(document, dict):
            raise ValueError("not a .licred file: the JSON is not an object")
        return cls._from_document(document)

    @classmethod
    def _from_document(cls, document: dict[str, Any]) -> CloudCredential:
        version = document.get("licred", LICRED_VERSION)
        if version != LICRED_VERSION:
            raise ValueError(f".licred version {version!r} is not supported by this SDK")
        fields = ("server_url", "vendor", "container_id", "credential")
        missing = [name for name in fields if not isinstance(document.get(name), str)]
        if missing:
            raise ValueError(f"not a .licred file: {', '.join(missing)} missing")
        return cls(*(str(document[name]) for name in fields))

    @classmethod
    def load(cls, source: str | os.PathLike[str]) -> CloudCredential:
        """Read ``source``: the path of a ``.licred`` file, or its JSON text itself.

        Raises ValueError if the content is not a ``.licred`` document, OSError if the
        path cannot be read.
        """
        if isinstance(source, str) and source.lstrip().startswith("{"):
            return cls.from_json(source)
        return cls.from_json(Path(source).read_text(encoding="utf-8"))

    def to_json(self) -> str:
        return json.dumps(
            {
                "licred": LICRED_VERSION,
                "server_url": self.server_url,
                "vendor": self.vendor,
                "container_id": self.container_id,
                "credential": self.credential,
            },
            indent=2,
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the file atomically, readable by its owner only (0600)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, (self.to_json() + "\n").encode("utf-8"))
        os.chmod(target, 0o600)
        return target


def redeem_cloud_ticket(
    server_url: str,
    vendor: str,
    ticket: str,
    *,
    name: str = "Cloud container",
    transport: httpx.BaseTransport | None = None,
    timeout: float = 30.0,
) -> CloudCredential:
    """Redeem ``ticket`` into a new cloud container and return its credential.

    The credential is shown once: save it (:meth:`CloudCredential.save`). Raises
    NetworkError if License Central cannot be reached, TicketRejectedError for a
    mistyped or unknown ticket, and ServerError (``ALREADY_REDEEMED``…) otherwise.
    """
    import httpx

    url = f"{server_url.rstrip('/')}/api/v1/vendors/{vendor}/cloud/redeem"
    headers = {"User-Agent": f"licentia-client/{__version__}"}
    try:
        with httpx.Client(transport=transport, timeout=timeout, headers=headers) as http:
            response = http.post(url, json={"ticket": ticket, "name": name})
    except httpx.HTTPError as error:
        raise NetworkError.unreachable(url, error) from error
    body = _json_object(response)
    if response.status_code != 201:
        raise error_from_problem(response.status_code, body)
    try:
        return CloudCredential(
            server_url, vendor, str(body["container_id"]), str(body["credential"])
        )
    except (KeyError, ValueError) as error:
        raise ServerError(
            "License Central's answer holds no credential. Contact your vendor.",
            status=response.status_code,
        ) from error


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
