"""license assignments: a customer's licenses and seats named to its users

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from licentia.server.db.base import UTCDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "license_assignments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("vendor_id", sa.String(length=36), nullable=False),
        sa.Column("license_id", sa.String(length=36), nullable=False),
        sa.Column("customer_user_id", sa.String(length=36), nullable=False),
        sa.Column("assigned_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_user_id"],
            ["customer_users.id"],
            name="fk_license_assignments_customer_user_id_customer_users",
        ),
        sa.ForeignKeyConstraint(
            ["license_id"], ["licenses.id"], name="fk_license_assignments_license_id_licenses"
        ),
        sa.ForeignKeyConstraint(
            ["vendor_id"], ["vendors.id"], name="fk_license_assignments_vendor_id_vendors"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_license_assignments"),
        sa.UniqueConstraint(
            "license_id",
            "customer_user_id",
            name="uq_license_assignments_license_id_customer_user_id",
        ),
    )
    op.create_index(
        "ix_license_assignments_customer_user_id", "license_assignments", ["customer_user_id"]
    )
    op.create_index("ix_license_assignments_license_id", "license_assignments", ["license_id"])
    op.create_index("ix_license_assignments_vendor_id", "license_assignments", ["vendor_id"])


def downgrade() -> None:
    op.drop_index("ix_license_assignments_vendor_id", table_name="license_assignments")
    op.drop_index("ix_license_assignments_license_id", table_name="license_assignments")
    op.drop_index("ix_license_assignments_customer_user_id", table_name="license_assignments")
    op.drop_table("license_assignments")
