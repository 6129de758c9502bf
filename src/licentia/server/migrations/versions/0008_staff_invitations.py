"""staff invitations: a vendor user may have no password yet, and a link to set one

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from licentia.server.db.base import UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("vendor_users", schema=None) as batch_op:
        batch_op.alter_column("password_hash", existing_type=sa.String(length=200), nullable=True)
        batch_op.add_column(sa.Column("link_token_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("link_expires_at", UTCDateTime(), nullable=True))
        batch_op.create_unique_constraint("uq_vendor_users_link_token_hash", ["link_token_hash"])


def downgrade() -> None:
    with op.batch_alter_table("vendor_users", schema=None) as batch_op:
        batch_op.drop_constraint("uq_vendor_users_link_token_hash", type_="unique")
        batch_op.drop_column("link_expires_at")
        batch_op.drop_column("link_token_hash")
        batch_op.alter_column("password_hash", existing_type=sa.String(length=200), nullable=False)
