"""A concurrent seat held with heartbeats: ``with client.seat(...) as seat:``.

Entering the block checks a seat out (waiting in line up to ``wait`` seconds if the
pool is full); a daemon thread then renews the lease every third of its TTL, less a
random jitter so that a team's clients spread out; leaving the block releases it.

Reconnecting. A checkout names a holder identity (user, device, process). A checkout
whose answer was lost is simply sent again: License Central gives the same holder its
own seat back instead of a second one. A heartbeat that cannot reach License Central
is retried with backoff and full jitter, with the same lease id and fence, until the
lease's own deadline: a network outage shorter than about two thirds of the TTL goes
unnoticed, whichever server node answers afterwards.

Losing the seat is never silent. The seat is *lost* when License Central answers
``SEAT_LOST`` (released, force-released by an administrator, or reassigned after it
expired), or when the lease's deadline passes without a renewal (the client cannot
know whether another holder took the seat). Then :attr:`Seat.lost` turns true,
:meth:`Seat.ensure` raises :class:`SeatLostError`, and the ``on_lost`` callback runs
once, on the thread that noticed (usually the heartbeat thread). Losing is final: the
application opens a new seat to continue, so a seat an administrator force-released is
not silently taken back.

Deadlines are measured with the local monotonic clock from the moment each request
was *sent* (the server's lease started no earlier), so a wrong wall clock cannot make
the client believe it holds a seat longer than License Central does.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol

from licentia.client._exceptions import (
    LicentiaClientError,
    SeatLostError,
    TransportError,
)
from licentia.client._retry import RetryPolicy, is_transient, retry_call
from licentia.client._tokens import field, malformed, moment

__all__ = ["HEARTBEAT_FRACTION", "Seat", "SeatChannel", "SeatGrant", "SeatRequest"]

HEARTBEAT_FRACTION = 1 / 3
_JITTER = 0.2  # each interval is 80-100 % of TTL times the fraction: never later, often earlier
_RELEASE_RETRY = RetryPolicy(attempts=3, base=0.2, cap=1.0, budget=3.0)
log = logging.getLogger("licentia.client")


class SeatChannel(Protocol):
    """What a seat needs from the client: the three seat calls, each one attempt."""

    def checkout(self, body: Mapping[str, Any], *, wait: float) -> dict[str, Any]: ...

    def heartbeat(self, lease_id: str, fence: int) -> dict[str, Any]: ...

    def release(self, lease_id: str, fence: int) -> None: ...

    def seat_claims(self, token: str, request: SeatRequest, grant: SeatGrant) -> dict[str, Any]:
        """The verified claims of a seat token, which must name ``request``'s product and
        feature and ``grant``'s license, lease and fence."""
        ...


@dataclass(frozen=True)
class SeatRequest:
    """What to check out and as whom (the holder identity the counting mode uses)."""

    product: str
    feature: str | None
    user: str
    device: str | None  # None: the client's registered device id
    process: str
    wait: float = 0.0

    def body(self) -> dict[str, Any]:
        return {
            "product": self.product,
            "feature": self.feature,
            "user": self.user,
            "device": self.device,
            "process": self.process,
            "wait_seconds": self.wait,
        }


@dataclass(frozen=True)
class SeatGrant:
    """What a checkout or heartbeat answer says was granted (its token must agree)."""

    lease_id: str
    license_id: str
    fence: int


@dataclass(frozen=True)
class _Lease:
    lease_id: str
    license_id: str
    fence: int
    expires_at: datetime
    ttl: float
    token: str
    claims: Mapping[str, Any]
    reconnected: bool
    deadline: float  # monotonic


class Seat:
    """One checked-out seat; a context manager (see the module docstring).

    Created by :meth:`CloudClient.seat`; nothing happens on the network until the
    block is entered (or :meth:`acquire` is called).
    """

    def __init__(
        self,
        channel: SeatChannel,
        request: SeatRequest,
        *,
        retry: RetryPolicy,
        on_lost: Callable[[SeatLostError], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.request = request
        self._channel = channel
        self._retry = retry
        self._on_lost = on_lost
        self._monotonic = monotonic
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._lease: _Lease | None = None
        self._lost: SeatLostError | None = None
        self._thread: threading.Thread | None = None
        self.release_error: LicentiaClientError | None = None

    # -- what the application reads ----------------------------------------------

    @property
    def lease_id(self) -> str:
        return self._current().lease_id

    @property
    def license_id(self) -> str:
        return self._current().license_id

    @property
    def fence(self) -> int:
        return self._current().fence

    @property
    def expires_at(self) -> datetime:
        """When License Central lets the lease run out unless it is renewed (server time)."""
        return self._current().expires_at

    @property
    def token(self) -> str:
        """The signed seat token (``licentia-seat+jwt``) of the latest renewal."""
        return self._current().token

    @property
    def reconnected(self) -> bool:
        """True if the checkout gave this holder back a seat it already held."""
        return self._current().reconnected

    @property
    def lost(self) -> bool:
        """True once the seat is known lost, or its lease ran out without a renewal."""
        lease = self._lease
        return self._lost is not None or (lease is not None and self._monotonic() >= lease.deadline)

    @property
    def error(self) -> SeatLostError | None:
        """Why the seat was lost (None while it is held)."""
        return self._lost

    def ensure(self) -> None:
        """Return if the seat is held; raise SeatLostError if it was lost."""
        lease = self._current()
        if self._lost is None and self._monotonic() >= lease.deadline:
            self._mark_lost(_ran_out())
        if self._lost is not None:
            raise SeatLostError(self._lost.message) from self._lost

    # -- lifecycle ------------------------------------------------------------------

    def acquire(self) -> Seat:
        """Check the seat out and start heartbeating. Raises NoSeatAvailableError when
        every seat stays taken (after waiting in line up to ``wait``), and the other
        typed errors of the checkout; transient failures are retried first."""
        if self._lease is not None:
            raise RuntimeError("this seat was acquired already; open a new one")
        sent = self._monotonic()
        answer = retry_call(
            lambda: self._channel.checkout(self.request.body(), wait=self.request.wait),
            self._retry,
        )
        self._lease = self._lease_from(answer, sent)
        self._thread = threading.Thread(
            target=self._heartbeat_loop, name=f"licentia-seat-{self.request.product}", daemon=True
        )
        self._thread.start()
        return self

    def heartbeat(self) -> None:
        """Renew the lease now (one attempt). Raises SeatLostError if License Central
        says the seat is gone, TransportError if it cannot be reached (the seat stays
        held until its deadline; the heartbeat thread keeps trying)."""
        lease = self._current()
        if self._lost is not None:
            raise SeatLostError(self._lost.message) from self._lost
        sent = self._monotonic()
        try:
            answer = self._channel.heartbeat(lease.lease_id, lease.fence)
        except LicentiaClientError as error:
            if not is_transient(error):
                self._mark_lost(error)
                raise SeatLostError(self._lost_message(error)) from error
            raise
        renewed = self._lease_from(answer, sent)
        if (renewed.lease_id, renewed.fence) != (lease.lease_id, lease.fence):
            raise malformed("a heartbeat answered for another lease")
        with self._lock:
            if self._lease is not None and renewed.deadline > self._lease.deadline:
                self._lease = renewed

    def release(self) -> None:
        """Stop heartbeating and free the seat at once. A release License Central did not
        receive is kept in ``release_error``; the lease then runs out by itself."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)
        lease = self._lease
        if lease is None:
            return
        try:
            retry_call(lambda: self._channel.release(lease.lease_id, lease.fence), _RELEASE_RETRY)
        except TransportError as error:
            self.release_error = error

    def __enter__(self) -> Seat:
        return self.acquire()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

    # -- the heartbeat thread -------------------------------------------------------

    def _heartbeat_loop(self) -> None:
        while not self._stop.wait(self._interval()):
            if not self._renew():
                return

    def _interval(self) -> float:
        lease = self._current()
        return lease.ttl * HEARTBEAT_FRACTION * (1 - _JITTER * self._rng.random())

    def _renew(self) -> bool:
        """One renewal, retried with backoff while the lease lasts; False once lost."""
        attempt = 0
        while True:
            try:
                self.heartbeat()
                return True
            except SeatLostError:
                return False
            except LicentiaClientError:
                pass  # unreachable, or an answer not to trust: try again while the lease lasts
            lease = self._current()
            delay = self._rng.uniform(0, min(max(0.05, lease.ttl / 6), 0.25 * 2**attempt))
            if self._monotonic() + delay >= lease.deadline:
                break  # the next try would come too late to keep the seat
            if self._stop.wait(delay):
                return True  # the block ended meanwhile: the release takes over
            attempt += 1
        self._mark_lost(_ran_out())
        return False

    # -- state ----------------------------------------------------------------------

    def _current(self) -> _Lease:
        lease = self._lease
        if lease is None:
            raise RuntimeError("the seat is not checked out yet: use it in a with block")
        return lease

    def _lease_from(self, answer: Mapping[str, Any], sent: float) -> _Lease:
        """The lease an answer grants, once its fields and its token check; raises
        ServerError (unreadable) or SignatureInvalidError (a token not to trust)."""
        grant = SeatGrant(
            field(answer, "lease_id", str),
            field(answer, "license_id", str),
            field(answer, "fence", int),
        )
        token, ttl = field(answer, "token", str), field(answer, "ttl_seconds", int)
        if ttl <= 0:
            raise malformed("its ttl_seconds is not positive")
        claims = self._channel.seat_claims(token, self.request, grant)
        return _Lease(
            lease_id=grant.lease_id,
            license_id=grant.license_id,
            fence=grant.fence,
            expires_at=moment(answer, "expires_at"),
            ttl=float(ttl),
            token=token,
            claims=claims,
            reconnected=answer.get("reconnected") is True,
            deadline=sent + ttl,
        )

    def _mark_lost(self, cause: LicentiaClientError) -> None:
        with self._lock:
            if self._lost is not None:
                return
            lost = SeatLostError(self._lost_message(cause))
            lost.__cause__ = cause
            lost.status, lost.server_code = cause.status, cause.server_code
            self._lost = lost
        self._stop.set()
        if self._on_lost is not None:
            try:
                self._on_lost(lost)
            except Exception:  # the application's callback must not kill the SDK's thread
                log.exception("the on_lost callback of a seat failed")

    @staticmethod
    def _lost_message(cause: LicentiaClientError) -> str:
        if isinstance(cause, SeatLostError):
            return cause.message
        return f"{SeatLostError.default_message} ({cause.code}: {cause.message})"


def _ran_out() -> SeatLostError:
    return SeatLostError(
        "The seat's lease ran out while License Central was unreachable, so another user "
        "may hold it now. Save your work and open the application again when you are online."
    )
