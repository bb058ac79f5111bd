"""The audit trail's tables (closedloop.audit.tables), as every FHIR service has them.

Revision ID: 0003
Revises: 0002
"""

from alembic import op
from closedloop.audit import tables

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    tables.create(op.get_bind())


def downgrade() -> None:
    tables.drop(op.get_bind())
