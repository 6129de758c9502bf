"""License reads by id on the event loop: on PostgreSQL several in one statement.

A vendor's ERP reads licenses by id more than anything else. The reads one worker
receives while a read statement is on its way go out together in the next one
(:class:`licentia.server.db.batches.Batches`): one round trip for all of them, and
two reads of the same license share its row. Each read still waits for a statement
sent after it arrived, so it sees every change committed before it came. On SQLite
a read is one local lookup on the loop's read-only connection.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import String, and_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY

from licentia.domain.errors import NotFoundError
from licentia.server.db.batches import Batches
from licentia.server.db.runner import Runner
from licentia.server.licenses.models import License
from licentia.server.licenses.services import LICENSE_ROW

log = logging.getLogger("licentia.licenses")
_WANTED = (
    func.unnest(bindparam("ids", type_=ARRAY(String)), bindparam("vendors", type_=ARRAY(String)))
    .table_valued("id", "vendor")
    .render_derived(name="wanted")
)
_LICENSE_ROWS = select(License.__table__).join(
    _WANTED,
    and_(License.__table__.c.id == _WANTED.c.id, License.__table__.c.vendor_id == _WANTED.c.vendor),
)


class LicenseReads:
    """Reads of one license (its columns, as ``services.LICENSE_ROW`` selects them)."""

    def __init__(self, runner: Runner) -> None:
        self._runner = runner
        self._batches: Batches[tuple[str, str], Any] = Batches(
            self._read_all, key=lambda wanted: wanted, share=True
        )

    async def read(self, vendor_id: str, license_id: str) -> Any:
        """The license's row. Raises NotFoundError if the vendor has no such license."""
        row = await self._find(vendor_id, license_id)
        if row is None:
            raise NotFoundError("license", license_id)
        return row

    async def _find(self, vendor_id: str, license_id: str) -> Any:
        parameters = {"license_id": license_id, "vendor_id": vendor_id}
        if not self._runner.postgresql:  # SQLite: one local read, no batch to wait for
            return await self._runner.first(LICENSE_ROW, parameters)
        try:
            return await self._batches.ask((license_id, vendor_id))
        except Exception:  # read alone: its own error, if any, is the one to report
            log.warning("reading licenses together failed", exc_info=True)
            return await self._runner.first(LICENSE_ROW, parameters)

    async def _read_all(self, wanted: list[tuple[str, str]]) -> list[Any]:
        parameters = {"ids": [i for i, _ in wanted], "vendors": [v for _, v in wanted]}
        rows = await self._runner.all(_LICENSE_ROWS, parameters)
        found = {(row.id, row.vendor_id): row for row in rows}
        return [found.get(key) for key in wanted]
