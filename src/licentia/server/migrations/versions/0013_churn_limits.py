"""churn limits: a license counts its activations and returns in the current period

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from licentia.server.db.base import UTCDateTime

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("licenses", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("churn_count", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("churn_period_ends", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("churn_full_until", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("licenses", schema=None) as batch_op:
        batch_op.drop_column("churn_full_until")
        batch_op.drop_column("churn_period_ends")
        batch_op.drop_column("churn_count")
