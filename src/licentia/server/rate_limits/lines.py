"""A line for each family of routes a guesser aims at: at most so many of its requests
are served at once by a process, as many more may wait a moment for a place, and one
more is refused at once.

The rate limits count per address and per credential, so a flood from many addresses
stays under every address's limits at first: 100 addresses may each send 10 logins
and 10 ticket codes before any is refused. Each of these allowed requests did real
work (a password check; a write transaction, which on SQLite waits for the one write
lock), and while it waited it held one of the threads of the request pool that every
other request needs as well: a legitimate client's read waited seconds for a thread
(docs/benchmarks.md, "A flood of guessers"). With a line, at most ``at_once`` requests
of each lined family are served at once. One more waits for a place, up to
``patience`` seconds (the refusal's ``Retry-After``), behind at most as many others as
the line has places: two people logging in at the same moment are both served, the
second some milliseconds later. Beyond those, or when no place came in time, a
request is answered ``503 FAMILY_BUSY`` with ``Retry-After: 1`` before its body is
parsed, a credential checked or the database touched. A waiting request holds its
connection and a future, no thread. The rate limits have counted it first, so a
flood's addresses reach their limits (and the tarpit) after as many requests as
without the line.

Counting happens on the event loop, with no ``await`` between the check and the
count, so two requests cannot both take the last place; a place given back goes to
the request that waited longest.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Mapping

from licentia.domain.errors import ServerBusyError
from licentia.server.rate_limits.families import Family
from licentia.server.settings import Settings

# The families a guesser aims at whose every request does work worth a line. Not
# ``activation``: a customer's rollout activates many devices at once, legitimately,
# and its rate limit bounds each address already; nor ``api`` and ``pages``.
LINED = frozenset({Family.LOGIN, Family.TICKET, Family.REGISTRATION, Family.PASSWORD_RESET})
BUSY = "FAMILY_BUSY"
LINE = "licentia.line"  # in a request's scope: the lined family it is served in
PATIENCE = 1.0  # seconds a request waits for a place: the busy refusal's Retry-After


class Lines:
    """The requests of each lined family being served in this process now, and how
    many may be (``places``: ``at_once`` for a family not named); the requests
    waiting for a place, first come first served."""

    def __init__(
        self,
        at_once: int,
        places: Mapping[Family, int] | None = None,
        *,
        patience: float = PATIENCE,
    ) -> None:
        self.places = {family: at_once for family in LINED} | dict(places or {})
        self.serving: Counter[Family] = Counter()
        self.waiting: dict[Family, deque[asyncio.Future[None]]] = {
            family: deque() for family in self.places
        }
        self.patience = patience

    @classmethod
    def of(cls, settings: Settings) -> Lines | None:
        """``LICENTIA_GUESSES_AT_ONCE`` places per family, and for ``login`` no more
        than ``LICENTIA_PASSWORD_CHECKS``: a login beyond the checks would read the
        database only to be refused ``LOGINS_BUSY``. None for 0 (no line)."""
        at_once = settings.guesses_at_once
        if at_once <= 0:
            return None
        return cls(at_once, {Family.LOGIN: min(at_once, settings.password_checks)})

    def take(self, family: Family) -> bool:
        """Take a place in ``family``'s line if one is free and nobody waits for one
        (give it back with :meth:`leave`)."""
        if self.serving[family] >= self.places[family] or self.waiting[family]:
            return False
        self.serving[family] += 1
        return True

    async def enter(self, family: Family) -> ServerBusyError | None:
        """Take a place in ``family``'s line (give it back with :meth:`leave`): at once
        when one is free, else once one is given back, waiting up to ``patience``
        seconds behind no more requests than the line has places; the error to
        answer instead when no place came."""
        if self.take(family):
            return None
        waiting = self.waiting[family]
        if len(waiting) >= self.places[family] or self.patience <= 0:
            return _busy(family)
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiting.append(turn)
        try:
            await asyncio.wait_for(asyncio.shield(turn), self.patience)
        except TimeoutError:
            pass
        except asyncio.CancelledError:  # the request is given up while it waits
            if turn.done():
                self.leave(family)  # the place it was given goes on to the next
            else:
                waiting.remove(turn)
            raise
        if turn.done():  # a place was given to it (perhaps as its time ran out)
            return None
        waiting.remove(turn)
        return _busy(family)

    def leave(self, family: Family) -> None:
        """Give a place back: to the request that waited longest for one, if any."""
        waiting = self.waiting[family]
        while waiting:
            turn = waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        self.serving[family] -= 1


def _busy(family: Family) -> ServerBusyError:
    return ServerBusyError(
        f"many requests of the family '{family.value}' are being answered at this "
        "moment; try again in a second",
        code=BUSY,
        family=family.value,
        retry_after_seconds=int(PATIENCE),
    )
