"""expiry reminders: license_notices (one per license, kind and end), mail_unsubscribes,
and licenses (valid_until) for the reminders' scan

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from licentia.server.db.base import UTCDateTime

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "license_notices",
        sa.Column("license_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("valid_until", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["license_id"], ["licenses.id"], name=op.f("fk_license_notices_license_id_licenses")
        ),
        sa.PrimaryKeyConstraint(
            "license_id", "kind", "valid_until", name=op.f("pk_license_notices")
        ),
    )
    op.create_table(
        "mail_unsubscribes",
        sa.Column("vendor_id", sa.String(length=36), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("topic", sa.String(length=32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["vendor_id"], ["vendors.id"], name=op.f("fk_mail_unsubscribes_vendor_id_vendors")
        ),
        sa.PrimaryKeyConstraint("vendor_id", "email", "topic", name=op.f("pk_mail_unsubscribes")),
    )
    with op.batch_alter_table("licenses", schema=None) as batch_op:
        batch_op.create_index("ix_licenses_valid_until", ["valid_until"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("licenses", schema=None) as batch_op:
        batch_op.drop_index("ix_licenses_valid_until")
    op.drop_table("mail_unsubscribes")
    op.drop_table("license_notices")
