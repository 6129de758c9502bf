"""webhook_events wake the delivery loops of every node: on PostgreSQL, a statement that
inserts events sends pg_notify on licentia_webhooks, delivered when it commits

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite: one process, woken by its own commits
    op.execute(
        """
        CREATE FUNCTION licentia_webhook_events_written() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('licentia_webhooks', '');
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER webhook_events_written AFTER INSERT ON webhook_events"
        " FOR EACH STATEMENT EXECUTE FUNCTION licentia_webhook_events_written()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER webhook_events_written ON webhook_events")
    op.execute("DROP FUNCTION licentia_webhook_events_written()")
