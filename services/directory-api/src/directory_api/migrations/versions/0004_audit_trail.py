"""The audit trail's tables (closedloop.audit.tables): one row per read, search, write or
refused request, one per resource it touched.

Revision ID: 0004
Revises: 0003
"""

from alembic import op
from closedloop.audit import tables

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    tables.create(op.get_bind())


def downgrade() -> None:
    tables.drop(op.get_bind())
