"""seat_slots (license_id, expires_at): count a pool's seats in use without a scan

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("seat_slots", schema=None) as batch_op:
        batch_op.create_index(
            "ix_seat_slots_license_expires", ["license_id", "expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("seat_slots", schema=None) as batch_op:
        batch_op.drop_index("ix_seat_slots_license_expires")
