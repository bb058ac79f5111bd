"""The audit trail's tables (closedloop.audit.tables): one row per read, search, write or
refused request, one per resource it touched.

Revision ID: 0006
Revises: 0005
"""

from alembic import op
from closedloop.audit import tables

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    tables.create(op.get_bind())


def downgrade() -> None:
    tables.drop(op.get_bind())
