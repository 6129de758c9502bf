"""subscriptions: a license's paid period, its cancellation and next automatic renewal,
and one row per renewal (what makes a renewal idempotent)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from licentia.server.db.base import UTCDateTime

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("licenses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("paid_until", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("subscription_cancelled_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("renews_at", UTCDateTime(), nullable=True))
        batch_op.create_index("ix_licenses_renews_at", ["renews_at"], unique=False)
    op.create_table(
        "subscription_renewals",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("vendor_id", sa.String(length=36), nullable=False),
        sa.Column("license_id", sa.String(length=36), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("paid_from", UTCDateTime(), nullable=False),
        sa.Column("paid_until", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["license_id"],
            ["licenses.id"],
            name=op.f("fk_subscription_renewals_license_id_licenses"),
        ),
        sa.ForeignKeyConstraint(
            ["vendor_id"], ["vendors.id"], name=op.f("fk_subscription_renewals_vendor_id_vendors")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription_renewals")),
        sa.UniqueConstraint(
            "license_id", "paid_from", name=op.f("uq_subscription_renewals_license_id_paid_from")
        ),
        sa.UniqueConstraint(
            "license_id",
            "source",
            "external_id",
            name=op.f("uq_subscription_renewals_license_id_source_external_id"),
        ),
    )
    with op.batch_alter_table("subscription_renewals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_subscription_renewals_vendor_id"), ["vendor_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("subscription_renewals")
    with op.batch_alter_table("licenses", schema=None) as batch_op:
        batch_op.drop_index("ix_licenses_renews_at")
        batch_op.drop_column("renews_at")
        batch_op.drop_column("subscription_cancelled_at")
        batch_op.drop_column("paid_until")
