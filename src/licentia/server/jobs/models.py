"""The job table: one row per piece of work, pending until done or failed for good."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from licentia.server.db.base import Base, created_column, id_column


class JobRow(Base):
    """``key``, when given, is unique: the natural key of an effect that must happen
    once (a periodic job's period, a reminder's license and end date). A claimed job
    carries its worker's token and lease; an expired lease makes it claimable again.
    ``vendor_id`` names the vendor a job works for (None: the server's own work, such as
    sweeps and the reminder rounds over every vendor); it has no foreign key, the job
    table being plumbing below the contexts."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_status_run_at", "status", "run_at"),
        Index("ix_jobs_vendor_id_status", "vendor_id", "status"),
    )

    id: Mapped[str] = id_column()
    kind: Mapped[str] = mapped_column(String(64))
    vendor_id: Mapped[str | None] = mapped_column(String(36))
    key: Mapped[str | None] = mapped_column(String(200), unique=True)
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), default="pending")  # done, failed
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=12)
    run_at: Mapped[datetime] = created_column()
    claimed_by: Mapped[str | None] = mapped_column(String(36))
    claimed_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = created_column()
    finished_at: Mapped[datetime | None]
