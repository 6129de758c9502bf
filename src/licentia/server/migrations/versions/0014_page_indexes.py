"""the console's pages on a large vendor: customer_license_counts (the dashboard's top
customers ranked on an index, backfilled from the licenses), licenses (customer_id,
state) in place of (customer_id) and (state, vendor_id, id) in place of (state),
devices (vendor_id, status, last_seen_at, created_at)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customer_license_counts",
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("vendor_id", sa.String(length=36), nullable=False),
        sa.Column("licenses", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_license_counts_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["vendor_id"], ["vendors.id"], name=op.f("fk_customer_license_counts_vendor_id_vendors")
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer_license_counts")),
    )
    with op.batch_alter_table("customer_license_counts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_customer_license_counts_vendor_licenses",
            ["vendor_id", "licenses", "customer_id"],
            unique=False,
        )
    op.execute(
        "INSERT INTO customer_license_counts (customer_id, vendor_id, licenses)"
        " SELECT customer_id, vendor_id, count(*) FROM licenses"
        " WHERE customer_id IS NOT NULL GROUP BY customer_id, vendor_id"
    )
    with op.batch_alter_table("licenses", schema=None) as batch_op:
        batch_op.drop_index("ix_licenses_customer_id")
        batch_op.create_index("ix_licenses_customer_state", ["customer_id", "state"], unique=False)
        batch_op.drop_index("ix_licenses_state")
        batch_op.create_index(
            "ix_licenses_state_vendor_id", ["state", "vendor_id", "id"], unique=False
        )
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.create_index(
            "ix_devices_vendor_activity",
            ["vendor_id", "status", "last_seen_at", "created_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_index("ix_devices_vendor_activity")
    with op.batch_alter_table("licenses", schema=None) as batch_op:
        batch_op.drop_index("ix_licenses_state_vendor_id")
        batch_op.create_index("ix_licenses_state", ["state"], unique=False)
        batch_op.drop_index("ix_licenses_customer_state")
        batch_op.create_index("ix_licenses_customer_id", ["customer_id"], unique=False)
    with op.batch_alter_table("customer_license_counts", schema=None) as batch_op:
        batch_op.drop_index("ix_customer_license_counts_vendor_licenses")
    op.drop_table("customer_license_counts")
