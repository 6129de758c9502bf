"""Webhooks' rules: the event catalogue, event filters, secrets and the retry schedule.

A delivery that fails is tried again after a delay that doubles with each attempt
(from one minute, capped at six hours), shortened by up to a quarter at random so that
the retries of many deliveries that failed together do not arrive together. After
``MAX_ATTEMPTS`` attempts, 20 to 27 hours after the first, it has failed for good.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Iterable
from datetime import timedelta

# The events sent to webhook endpoints; each has a JSON Schema in docs/webhook-events/.
EVENT_TYPES: tuple[str, ...] = (
    "order.created",
    "order.cancelled",
    "order.returned",
    "ticket.created",
    "license.activated",
    "license.returned",
    "license.suspended",
    "license.resumed",
    "license.withdrawn",
    "license.extended",
    "device.flagged",
    "device.blacklisted",
    "seat.denied",
    "units.low",
    "units.exhausted",
    "subscription.renewed",
    "subscription.cancelled",
    "license.expiring",
    "license.expired",
)
ALL_EVENTS = "*"  # an endpoint filter entry that matches every event type

# Most events are written from the audit entry of their change, whose action has the
# event's name; a counter's are named for what the vendor watches. seat.denied has no
# audit entry: the seats context writes it itself, at most once a minute per pool.
EVENT_OF_ACTION: dict[str, str] = {
    **{name: name for name in EVENT_TYPES if not name.startswith(("seat.", "units."))},
    "counter.low_balance": "units.low",
    "counter.exhausted": "units.exhausted",
}
SEAT_DENIED_WINDOW_SECONDS = 60

MAX_ATTEMPTS = 13
FIRST_DELAY = timedelta(minutes=1)
LONGEST_DELAY = timedelta(hours=6)
SECRET_PREFIX = "whsec_"  # noqa: S105 - not a secret


def matches(event_filter: Iterable[str], event_type: str) -> bool:
    """Whether an endpoint whose filter is ``event_filter`` receives ``event_type``."""
    return any(entry in (ALL_EVENTS, event_type) for entry in event_filter)


def unknown_event_types(event_filter: Iterable[str]) -> list[str]:
    """The entries of a filter that name no event of the catalogue."""
    return [e for e in event_filter if e != ALL_EVENTS and e not in EVENT_TYPES]


def retry_delay(
    attempts: int, fraction: Callable[[], float] = secrets.SystemRandom().random
) -> timedelta | None:
    """How long to wait after the ``attempts``-th failed attempt, or None when the
    delivery has failed for good. ``fraction`` draws the jitter, in [0, 1)."""
    if attempts >= MAX_ATTEMPTS:
        return None
    full: timedelta = min(FIRST_DELAY * 2 ** (attempts - 1), LONGEST_DELAY)
    return full * (0.75 + fraction() / 4)


def new_secret() -> str:
    """A signing secret as Standard Webhooks writes it: ``whsec_`` and 32 random bytes
    in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()
