"""Clients gain a role (requester, cbo, service, admin) that goes into their tokens; clients
registered before get ``requester`` when they name an organization and ``admin`` otherwise
(before roles, a client without an organization was not narrowed to one).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("auth_clients") as batch:
        batch.add_column(sa.Column("role", sa.String(40), nullable=True))
    op.execute(
        "UPDATE auth_clients SET role = CASE WHEN organization IS NULL THEN 'admin' "
        "ELSE 'requester' END"
    )


def downgrade() -> None:
    with op.batch_alter_table("auth_clients") as batch:
        batch.drop_column("role")
