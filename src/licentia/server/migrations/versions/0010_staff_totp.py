"""staff TOTP: an authenticator per vendor user and single-use recovery codes

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from licentia.server.db.base import UTCDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staff_totp",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("vendor_id", sa.String(length=36), nullable=False),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column("enabled_at", UTCDateTime(), nullable=True),
        sa.Column("last_step", sa.BigInteger(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["vendor_users.id"], name="fk_staff_totp_user_id_vendor_users"
        ),
        sa.ForeignKeyConstraint(
            ["vendor_id"], ["vendors.id"], name="fk_staff_totp_vendor_id_vendors"
        ),
        sa.PrimaryKeyConstraint("user_id", name="pk_staff_totp"),
    )
    op.create_index("ix_staff_totp_vendor_id", "staff_totp", ["vendor_id"])
    op.create_table(
        "staff_recovery_codes",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["vendor_users.id"], name="fk_staff_recovery_codes_user_id_vendor_users"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_staff_recovery_codes"),
        sa.UniqueConstraint("code_hash", name="uq_staff_recovery_codes_code_hash"),
    )
    op.create_index("ix_staff_recovery_codes_user_id", "staff_recovery_codes", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_staff_recovery_codes_user_id", table_name="staff_recovery_codes")
    op.drop_table("staff_recovery_codes")
    op.drop_index("ix_staff_totp_vendor_id", table_name="staff_totp")
    op.drop_table("staff_totp")
