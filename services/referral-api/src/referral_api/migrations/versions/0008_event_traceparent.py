"""``outbox_events.traceparent``: the W3C trace context of the change's request, so the
event's delivery (and the notifier's, after it) continues that trace.

Revision 0002 creates the tables from the current definitions, so on a new database the
column exists already: it is added only where it is missing.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _existing() -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns("outbox_events")}


def upgrade() -> None:
    if "traceparent" not in _existing():
        with op.batch_alter_table("outbox_events") as batch:
            batch.add_column(sa.Column("traceparent", sa.String(55), nullable=True))


def downgrade() -> None:
    if "traceparent" in _existing():
        with op.batch_alter_table("outbox_events") as batch:
            batch.drop_column("traceparent")
