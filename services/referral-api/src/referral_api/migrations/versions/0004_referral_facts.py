"""The loop metrics' projection, ``referral_facts`` (referral_api.measures.tables).

Revision ID: 0004
Revises: 0003
"""

from alembic import op
from referral_api.measures.tables import metadata

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    metadata.create_all(op.get_bind())


def downgrade() -> None:
    metadata.drop_all(op.get_bind())
