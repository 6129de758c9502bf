"""web fronts: vendor branding, customer users and their sessions, failed logins

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from licentia.server.db.base import UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "vendor_brandings",
        sa.Column("vendor_id", sa.String(length=36), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("primary_colour", sa.String(length=7), nullable=False),
        sa.Column("accent_colour", sa.String(length=7), nullable=False),
        sa.Column("support_email", sa.String(length=320), nullable=True),
        sa.Column("support_url", sa.String(length=500), nullable=True),
        sa.Column("logo", sa.LargeBinary(), nullable=True),
        sa.Column("logo_type", sa.String(length=40), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["vendor_id"], ["vendors.id"], name="fk_vendor_brandings_vendor_id_vendors"
        ),
        sa.PrimaryKeyConstraint("vendor_id", name="pk_vendor_brandings"),
    )
    op.create_table(
        "customer_users",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("vendor_id", sa.String(length=36), nullable=False),
        sa.Column("customer_id", sa.String(length=36), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("link_token_hash", sa.String(length=64), nullable=True),
        sa.Column("link_expires_at", UTCDateTime(), nullable=True),
        sa.Column("disabled_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name="fk_customer_users_customer_id_customers"
        ),
        sa.ForeignKeyConstraint(
            ["vendor_id"], ["vendors.id"], name="fk_customer_users_vendor_id_vendors"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_customer_users"),
        sa.UniqueConstraint("link_token_hash", name="uq_customer_users_link_token_hash"),
        sa.UniqueConstraint("vendor_id", "email", name="uq_customer_users_vendor_id_email"),
    )
    op.create_index("ix_customer_users_customer_id", "customer_users", ["customer_id"])
    op.create_index("ix_customer_users_vendor_id", "customer_users", ["vendor_id"])
    op.create_table(
        "customer_sessions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("customer_user_id", sa.String(length=36), nullable=False),
        sa.Column("vendor_id", sa.String(length=36), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_user_id"],
            ["customer_users.id"],
            name="fk_customer_sessions_customer_user_id_customer_users",
        ),
        sa.ForeignKeyConstraint(
            ["vendor_id"], ["vendors.id"], name="fk_customer_sessions_vendor_id_vendors"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_customer_sessions"),
        sa.UniqueConstraint("token_hash", name="uq_customer_sessions_token_hash"),
    )
    op.create_index(
        "ix_customer_sessions_customer_user_id", "customer_sessions", ["customer_user_id"]
    )
    op.create_index("ix_customer_sessions_vendor_id", "customer_sessions", ["vendor_id"])
    op.create_table(
        "login_failures",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_login_failures"),
    )
    op.create_index("ix_login_failures_key_at", "login_failures", ["key_hash", "at"])


def downgrade() -> None:
    op.drop_index("ix_login_failures_key_at", table_name="login_failures")
    op.drop_table("login_failures")
    op.drop_index("ix_customer_sessions_vendor_id", table_name="customer_sessions")
    op.drop_index("ix_customer_sessions_customer_user_id", table_name="customer_sessions")
    op.drop_table("customer_sessions")
    op.drop_index("ix_customer_users_vendor_id", table_name="customer_users")
    op.drop_index("ix_customer_users_customer_id", table_name="customer_users")
    op.drop_table("customer_users")
    op.drop_table("vendor_brandings")
