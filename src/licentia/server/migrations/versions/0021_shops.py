"""shops: per-vendor web-shop settings, price-to-SKU mappings, received events, references

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from licentia.server.db.base import UTCDateTime

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shop_settings",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("vendor_id", sa.String(length=36), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("signing_secret", sa.LargeBinary(), nullable=False),
        sa.Column("refund_action", sa.String(length=16), nullable=False),
        sa.Column("cancel_action", sa.String(length=16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["vendor_id"], ["vendors.id"], name=op.f("fk_shop_settings_vendor_id_vendors")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shop_settings")),
        sa.UniqueConstraint(
            "vendor_id", "provider", name=op.f("uq_shop_settings_vendor_id_provider")
        ),
    )
    with op.batch_alter_table("shop_settings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shop_settings_vendor_id"), ["vendor_id"], unique=False)

    op.create_table(
        "shop_mappings",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("vendor_id", sa.String(length=36), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("provider_ref", sa.String(length=200), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["vendor_id"], ["vendors.id"], name=op.f("fk_shop_mappings_vendor_id_vendors")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shop_mappings")),
        sa.UniqueConstraint(
            "vendor_id",
            "provider",
            "provider_ref",
            name=op.f("uq_shop_mappings_vendor_id_provider_provider_ref"),
        ),
    )
    with op.batch_alter_table("shop_mappings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shop_mappings_vendor_id"), ["vendor_id"], unique=False)

    op.create_table(
        "shop_events",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("vendor_id", sa.String(length=36), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("order_id", sa.String(length=36), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.String(length=500), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["vendor_id"], ["vendors.id"], name=op.f("fk_shop_events_vendor_id_vendors")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shop_events")),
        sa.UniqueConstraint(
            "vendor_id",
            "provider",
            "event_id",
            name=op.f("uq_shop_events_vendor_id_provider_event_id"),
        ),
    )
    with op.batch_alter_table("shop_events", schema=None) as batch_op:
        batch_op.create_index("ix_shop_events_vendor_status", ["vendor_id", "status"], unique=False)

    op.create_table(
        "shop_references",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("vendor_id", sa.String(length=36), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_shop_references_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["vendor_id"], ["vendors.id"], name=op.f("fk_shop_references_vendor_id_vendors")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shop_references")),
        sa.UniqueConstraint(
            "vendor_id",
            "provider",
            "reference",
            name=op.f("uq_shop_references_vendor_id_provider_reference"),
        ),
    )
    with op.batch_alter_table("shop_references", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shop_references_order_id"), ["order_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("shop_references", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shop_references_order_id"))
    op.drop_table("shop_references")
    with op.batch_alter_table("shop_events", schema=None) as batch_op:
        batch_op.drop_index("ix_shop_events_vendor_status")
    op.drop_table("shop_events")
    with op.batch_alter_table("shop_mappings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shop_mappings_vendor_id"))
    op.drop_table("shop_mappings")
    with op.batch_alter_table("shop_settings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shop_settings_vendor_id"))
    op.drop_table("shop_settings")
