"""licenses.delivery: filter by delivery in SQL

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("licenses", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("delivery", sa.String(length=16), nullable=False, server_default="device")
        )
        batch_op.create_index(
            "ix_licenses_ticket_delivery", ["ticket_id", "delivery", "template_id"], unique=False
        )
        batch_op.create_index(
            "ix_licenses_ticket_free",
            ["ticket_id", "template_id", "state", "device_id"],
            unique=False,
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("UPDATE licenses SET delivery = options->>'delivery' WHERE options ? 'delivery'")
    else:
        op.execute(
            "UPDATE licenses SET delivery = json_extract(options, '$.delivery') "
            "WHERE json_extract(options, '$.delivery') IS NOT NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("licenses", schema=None) as batch_op:
        batch_op.drop_index("ix_licenses_ticket_free")
        batch_op.drop_index("ix_licenses_ticket_delivery")
        batch_op.drop_column("delivery")
