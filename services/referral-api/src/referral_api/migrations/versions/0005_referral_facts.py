"""The loop metrics' projection, ``referral_facts`` (referral_api.measures.tables).

Revision ID: 0005
Revises: 0004
"""

from alembic import op
from referral_api.measures.tables import metadata

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    metadata.create_all(op.get_bind())


def downgrade() -> None:
    metadata.drop_all(op.get_bind())
