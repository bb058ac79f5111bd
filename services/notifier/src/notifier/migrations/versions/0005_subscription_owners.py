"""Who owns each Subscription: ``subscription_state.owner_subject``, ``owner_role`` and
``owner_organization``, from the token that created it. A subscription is told only what its
owner may read, and only its owner's organization (or an admin) sees it.

Revision 0002 creates the tables from the current definitions, so on a new database the
columns exist already: they are added only where they are missing. Subscriptions made before
this revision have no owner and keep being told everything (as with authorization off).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

COLUMNS = (
    ("owner_subject", sa.String(255)),
    ("owner_role", sa.String(32)),
    ("owner_organization", sa.String(255)),
)


def _existing() -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns("subscription_state")}


def upgrade() -> None:
    existing = _existing()
    with op.batch_alter_table("subscription_state") as batch:
        for name, type_ in COLUMNS:
            if name not in existing:
                batch.add_column(sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    existing = _existing()
    with op.batch_alter_table("subscription_state") as batch:
        for name, _type in COLUMNS:
            if name in existing:
                batch.drop_column(name)
