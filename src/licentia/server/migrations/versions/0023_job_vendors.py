"""jobs.vendor_id: the vendor a job works for, so that its staff see its failed jobs

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("vendor_id", sa.String(length=36), nullable=True))
        batch_op.create_index("ix_jobs_vendor_id_status", ["vendor_id", "status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_vendor_id_status")
        batch_op.drop_column("vendor_id")
