"""``notification_events.traceparent``: the W3C trace context of the referral event a
notification is for, so its delivery continues that trace even after a restart.

Revision 0002 creates the tables from the current definitions, so on a new database the
column exists already: it is added only where it is missing.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _existing() -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns("notification_events")}


def upgrade() -> None:
    if "traceparent" not in _existing():
        with op.batch_alter_table("notification_events") as batch:
            batch.add_column(sa.Column("traceparent", sa.String(55), nullable=True))


def downgrade() -> None:
    if "traceparent" in _existing():
        with op.batch_alter_table("notification_events") as batch:
            batch.drop_column("traceparent")
