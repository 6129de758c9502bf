"""webhook_events.once_key: an event sent at most once per key (seat.denied per pool
and minute), unique where set

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("once_key", sa.String(length=200), nullable=True))
        batch_op.create_index(
            "uq_webhook_events_once_key",
            ["once_key"],
            unique=True,
            postgresql_where=sa.text("once_key IS NOT NULL"),
            sqlite_where=sa.text("once_key IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.drop_index("uq_webhook_events_once_key")
        batch_op.drop_column("once_key")
