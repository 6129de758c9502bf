"""Signing a license document next to a raw Ed25519 signature of the same bytes.

The document path is what the API runs once the license row is loaded: build the
claims (``license_claims``) and sign them as a compact JWS (``Signer.sign``). The
reference is ``cryptography``'s Ed25519 signature over the document's JSON payload,
the bytes the claims serialize to. Both are timed in alternating rounds so that a
slow moment of the machine hits both alike.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from licentia.domain.templates import TemplateOptions
from licentia.formats.document_types import LICENSE_TYP
from licentia.server.keys.services import Signer
from licentia.server.licenses.models import License
from licentia.server.licenses.services import license_claims

GOAL_RATIO = 3.0


@dataclass(frozen=True)
class SigningResult:
    """Medians over the rounds: a round that another process slowed down is outvoted."""

    document_us: float
    raw_us: float
    ratio: float
    payload_bytes: int
    rounds: int


def sample_license(now: datetime) -> License:
    """A license as an order issues it, with the options of a default template (not stored)."""
    return License(
        id="0192f0c4-7c1e-7a2b-9d3e-5f6a7b8c9d0e",
        state="available",
        issued_at=now,
        valid_until=now + timedelta(days=365),
        maintenance_until=now + timedelta(days=365),
        version=1,
        product_code="PHOTOPRO",
        features=["edit", "export", "raw"],
        options=TemplateOptions.model_validate({"maintenance_days": 365}).model_dump(mode="json"),
    )


def measure_signing(*, seconds: float = 4.0, rounds: int = 20) -> SigningResult:
    """Time both operations for about ``seconds`` in total; microseconds per call.

    Each round times a batch of documents and then a batch of raw signatures of the
    same size, and yields one ratio; the result is the median of those ratios.
    """
    now = datetime.now(UTC)
    license_ = sample_license(now)
    key = Ed25519PrivateKey.generate()
    signer = Signer("k-bench", key)
    payload = json.dumps(
        license_claims(license_, issuer="bench", now=now), separators=(",", ":"), sort_keys=True
    ).encode()

    def document() -> None:
        signer.sign(license_claims(license_, issuer="bench", now=now), typ=LICENSE_TYP)

    def raw() -> None:
        key.sign(payload)

    batch = _batch_size(document, seconds / (2 * rounds))
    documents, raws = [], []
    for _ in range(rounds):
        documents.append(_time_batch(document, batch) / batch * 1e6)
        raws.append(_time_batch(raw, batch) / batch * 1e6)
    return SigningResult(
        document_us=statistics.median(documents),
        raw_us=statistics.median(raws),
        ratio=statistics.median(d / r for d, r in zip(documents, raws, strict=True)),
        payload_bytes=len(payload),
        rounds=rounds,
    )


def _batch_size(operation: Callable[[], None], target_seconds: float) -> int:
    """How many calls of ``operation`` take about ``target_seconds`` (after a warm-up)."""
    per_call = _time_batch(operation, 200) / 200
    return max(100, int(target_seconds / per_call))


def _time_batch(operation: Callable[[], None], count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        operation()
    return time.perf_counter() - start
