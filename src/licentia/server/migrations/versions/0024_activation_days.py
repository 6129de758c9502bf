"""activation_days: each vendor's activations per UTC day, kept with every activation
for the dashboard, backfilled from the audit log's license.activated events

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "activation_days",
        sa.Column("vendor_id", sa.String(length=36), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("activations", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["vendor_id"], ["vendors.id"], name=op.f("fk_activation_days_vendor_id_vendors")
        ),
        sa.PrimaryKeyConstraint("vendor_id", "day", name=op.f("pk_activation_days")),
    )
    # A vendor's events are on the chain named by its id; the day is the event's UTC day
    # (SQLite keeps times as UTC text, PostgreSQL with their zone).
    day = (
        "(audit_events.at AT TIME ZONE 'UTC')::date"
        if op.get_bind().dialect.name == "postgresql"
        else "date(audit_events.at)"
    )
    backfill = (  # no input: ``day`` is one of two fixed texts
        "INSERT INTO activation_days (vendor_id, day, activations)"  # noqa: S608
        f" SELECT vendors.id, {day}, count(*) FROM audit_events"
        " JOIN vendors ON vendors.id = audit_events.chain"
        " WHERE audit_events.action = 'license.activated'"
        f" GROUP BY vendors.id, {day}"
    )
    op.execute(backfill)


def downgrade() -> None:
    op.drop_table("activation_days")
