"""The Prometheus metrics every server process counts (docs/operations.md#metrics).

Counters and histograms are counted where the event happens, in the process that
serves it. Under ``licentia serve --workers N`` each worker writes its values to files
of a shared folder (prometheus-client's multiprocess mode, set up by ``licentia
serve``), and whichever worker answers ``/metrics`` adds up every worker's values;
with one process they stay in its memory. Gauges of the database's state (seats in
use) are read from the database when ``/metrics`` is scraped
(:mod:`licentia.server.api.metrics`), so they need no per-process bookkeeping.

Label values are bounded: a route's template (never the raw path), a vendor's slug and
a product code that the database has already matched, an error code of a fixed set.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Answers of the API take from under a millisecond (a hot read) to seconds (a large
# order, a login's password hash): buckets that separate both ends.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "licentia_http_requests",
    "HTTP requests answered, by method, route template and status code.",
    ("method", "route", "status"),
)
REQUEST_SECONDS = Histogram(
    "licentia_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by method and route template.",
    ("method", "route"),
    buckets=LATENCY_BUCKETS,
)
ACTIVATIONS = Counter(
    "licentia_activations",
    "Licenses activated: bound to a device or placed in a cloud container.",
    ("vendor", "product", "delivery"),
)
SEAT_CHECKOUTS = Counter(
    "licentia_seat_checkouts",
    "Seats taken from a pool (a holder taking back its own seat is not counted).",
    ("vendor", "product"),
)
SEAT_DENIALS = Counter(
    "licentia_seat_denials",
    "Seat checkouts refused because no seat was free (code NO_SEAT_AVAILABLE) or the "
    "seat is held exclusively (SEAT_HELD_EXCLUSIVELY).",
    ("vendor", "product", "code"),
)
UNITS_CONSUMED = Counter(
    "licentia_units_consumed",
    "Units taken from license counters (a replayed consumption key is not counted).",
    ("vendor", "product"),
)
WEBHOOK_ATTEMPTS = Counter(
    "licentia_webhook_attempts",
    "Webhook delivery attempts, by outcome: delivered (a 2xx answer) or failed.",
    ("outcome",),
)
WEBHOOK_FAILED_DELIVERIES = Counter(
    "licentia_webhook_deliveries_failed",
    "Webhook deliveries that failed for good (every retry failed; the endpoint is disabled).",
)
