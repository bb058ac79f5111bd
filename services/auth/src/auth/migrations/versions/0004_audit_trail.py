"""The audit trail's tables (closedloop.audit.tables), as every FHIR service has them: here
they hold the authorization decisions (tokens issued and refused, sign-ins) and the
administrators' changes (closedloop.audit.security).

Revision ID: 0004
Revises: 0003
"""

from alembic import op
from closedloop.audit.tables import create, drop

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create(op.get_bind())


def downgrade() -> None:
    drop(op.get_bind())
