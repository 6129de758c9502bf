"""What the cloud client checks in every token License Central signs for it, and in the
plain JSON around it.

A valid signature only says the vendor signed the token once; an answer can still be
old (handed back again by whoever sits on the network) or about something else. So
besides the signature and the ``typ`` (:class:`~licentia.client._cloud_api.VendorKeys`)
every access, seat and borrow token must name this vendor (``iss``), this container
or device (``aud``), this registration (``device``), the product and feature asked
for, the license, lease and fence the answer names, and be valid now by the client's
trusted clock (``nbf``, ``exp``). A token that fails any of these is refused with
:class:`SignatureInvalidError`; an answer whose JSON lacks a field or has the wrong
type is a :class:`ServerError` (``status`` None: the SDK found it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from licentia.client._exceptions import ServerError, SignatureInvalidError

__all__ = ["NBF_LEEWAY_SECONDS", "Expected", "ServerTime", "check_claims", "field", "moment"]

# A token is issued "now" by the server's clock; a device clock a little behind it must
# not refuse it. Never applied to ``exp``: an expired token is refused at once.
NBF_LEEWAY_SECONDS = 300
LATEST_TIME = 253402300799  # 9999-12-31T23:59:59Z, the last second a datetime can hold
T = TypeVar("T")


@dataclass(frozen=True)
class Expected:
    """What a token must say; None: not checked (the field is not part of the answer)."""

    vendor: str
    audience: str
    product: str
    device: str | None = None
    feature: str | None = None
    license_id: str | None = None
    lease: str | None = None
    fence: int | None = None
    scope: bool = False  # an access token names the feature asked for in ``scope``


class ServerTime:
    """The cloud client's trusted time: the later of the local clock and the newest
    ``iat`` License Central signed, so a clock set back cannot make an old token look
    current. Thread-safe."""

    def __init__(self, local_clock: Callable[[], datetime]) -> None:
        self._local_clock = local_clock
        self._latest = 0
        self._lock = threading.Lock()

    def now(self) -> float:
        return max(self._local_clock().timestamp(), float(self._latest))

    def saw(self, issued_at: int) -> None:
        with self._lock:
            self._latest = max(self._latest, issued_at)


def check_claims(claims: Mapping[str, Any], expected: Expected, now: float) -> None:
    """Raise SignatureInvalidError unless ``claims`` say what ``expected`` asks and are
    valid at ``now`` (epoch seconds)."""
    wrong = [name for name, want in _wanted(expected) if claims.get(name) != want]
    features = claims.get("features")
    if not isinstance(features, list) or (
        expected.feature is not None and expected.feature not in features
    ):
        wrong.append("features")
    if wrong:
        raise SignatureInvalidError(
            "License Central answered with a token about something else than was asked "
            f"({', '.join(wrong)} differ). Check the server address, or contact your vendor."
        )
    _check_times(claims, now)


def _wanted(expected: Expected) -> list[tuple[str, Any]]:
    wanted: list[tuple[str, Any]] = [
        ("iss", expected.vendor),
        ("aud", expected.audience),
        ("product", expected.product),
    ]
    optional = {
        "device": expected.device,
        "sub": expected.license_id,
        "lease": expected.lease,
        "fence": expected.fence,
    }
    wanted += [(name, value) for name, value in optional.items() if value is not None]
    if expected.scope:
        wanted.append(("scope", expected.feature))
    return wanted


def _check_times(claims: Mapping[str, Any], now: float) -> None:
    issued, expires = _count(claims.get("iat")), _count(claims.get("exp"))
    not_before = _count(claims.get("nbf", 0))
    if issued is None or expires is None or not_before is None:
        raise SignatureInvalidError("License Central's token has no valid iat, nbf or exp.")
    if max(issued, not_before) > now + NBF_LEEWAY_SECONDS:
        raise SignatureInvalidError(
            f"License Central's token is valid only from {_when(max(issued, not_before))}, "
            f"later than this device's time ({_when(now)}). Check the date and time."
        )
    if expires <= now:
        raise SignatureInvalidError(
            f"License Central's token expired at {_when(expires)}, before this device's "
            f"time ({_when(now)}): an old answer was handed back, or this device's clock "
            "is wrong. Check the date and time, and the network."
        )


def _count(value: Any) -> int | None:
    """``value`` if it is a plausible epoch second (an int, not a bool), else None."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= LATEST_TIME:
        return value
    return None


def _when(seconds: float) -> str:
    return f"{datetime.fromtimestamp(seconds, UTC):%Y-%m-%d %H:%M:%S} UTC"


def field(answer: Mapping[str, Any], name: str, kind: type[T]) -> T:
    """``answer[name]`` if it is a ``kind``; a ServerError if it is missing or not."""
    value = answer.get(name)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise malformed(f"its {name!r} is missing or of the wrong type")
    return value


def moment(answer: Mapping[str, Any], name: str) -> datetime:
    """``answer[name]`` read as an aware RFC 3339 time; a ServerError if it is not one."""
    try:
        value = datetime.fromisoformat(field(answer, name, str))
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise malformed(f"its {name!r} is not a time")
    return value


def malformed(detail: str) -> ServerError:
    return ServerError(
        f"License Central's answer cannot be read ({detail}). Check the server address, "
        "or update the application.",
        status=None,
    )
