"""Per-subscription backoff and isolation: ``subscription_state.failures`` (how many times in a
row working the subscription failed) and ``filters_failed`` (its filters could not be evaluated;
matching leaves it out until the client rewrites it).

Revision 0002 creates the tables from the current definitions, so on a new database the
columns exist already: they are added only where they are missing.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COLUMNS = (
    ("failures", sa.Integer(), "0"),
    ("filters_failed", sa.Boolean(), sa.false()),
)


def _existing() -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns("subscription_state")}


def upgrade() -> None:
    existing = _existing()
    with op.batch_alter_table("subscription_state") as batch:
        for name, type_, default in COLUMNS:
            if name not in existing:
                batch.add_column(sa.Column(name, type_, nullable=False, server_default=default))


def downgrade() -> None:
    existing = _existing()
    with op.batch_alter_table("subscription_state") as batch:
        for name, _type, _default in COLUMNS:
            if name in existing:
                batch.drop_column(name)
