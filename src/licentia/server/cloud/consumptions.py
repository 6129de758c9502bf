"""Consumptions that arrive together take their units together: one statement for many.

Many devices consuming from one counter all update the counter's one row, so each
consumption waited for the one before it to commit: the row's lock, held from the
UPDATE to the end of the COMMIT, made a hot counter as fast as one commit after
another. Here, on PostgreSQL, the consumptions one worker receives while a statement
is on its way go out together in the next one
(:class:`licentia.server.db.batches.Batches`), taken by
:func:`licentia.server.counters.services.consume_many`: one lock, one round trip and
one commit for the lot, each with its own ledger row.

Each consumption first finds its counter on its own (the device's access check and
the container's licenses, :func:`protocol.find_counter`), which raises the access and
license errors. One that the batch did not take (a key used before, the units running
out or crossing the low-balance mark, a twin committed meanwhile), or any failure of
the statement, answers None: the caller then takes it alone, and the full counter
service decides what the fast paths leave to it.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from licentia.server.cloud import protocol
from licentia.server.cloud.access import seen_lately, touch_device
from licentia.server.cloud.protocol import Consumed, Presented, UnitsWanted
from licentia.server.counters.services import MAX_KEY, Taken, UnitsClaim, consume_many
from licentia.server.db.base import utcnow
from licentia.server.db.batches import Batches
from licentia.server.db.runner import Runner

log = logging.getLogger("licentia.counters")


class Consumptions:
    """Consumptions taken in batches (PostgreSQL: the statement uses arrays)."""

    def __init__(self, runner: Runner) -> None:
        self._runner = runner
        # Two consumptions with one key on one counter are taken by a statement each.
        self._batches: Batches[UnitsClaim, Taken] = Batches(
            self._take_all, key=lambda claim: (claim.license_id, claim.key), share=False
        )

    async def consume(self, who: Presented, wanted: UnitsWanted) -> Consumed | None:
        """The consumption if its units were taken with others', else None (having
        taken nothing). Raises the errors of :func:`protocol.find_counter`."""
        if not self._runner.postgresql or wanted.units <= 0 or not 1 <= len(wanted.key) <= MAX_KEY:
            return None
        now = utcnow()
        counter = await self._runner.autocommit(
            lambda c: protocol.find_counter(c, who, wanted.product, wanted.feature, now=now)
        )
        access = counter.access
        claim = UnitsClaim(
            counter.license_id,
            access.vendor_id,
            access.device_id,
            wanted.units,
            wanted.key,
            counter.low_balance,
        )
        try:
            taken = await self._batches.ask(claim)
        except Exception:  # the consumption is then taken alone, and says its own error
            log.warning("taking units together failed", exc_info=True)
            return None
        if taken is None:
            return None
        if not seen_lately(access, now):
            await self._runner.autocommit(lambda c: touch_device(c, access, utcnow()))
        return Consumed(counter.license_id, wanted.units, taken.balance_after, wanted.key)

    async def _take_all(self, batch: list[UnitsClaim]) -> list[Taken | None]:
        now: datetime = utcnow()
        try:
            taken: list[Any] = await self._runner.autocommit(
                lambda connection: consume_many(connection, batch, now=now)
            )
        except IntegrityError:  # a key committed meanwhile: each is taken alone, and replays
            return [None] * len(batch)
        return taken
