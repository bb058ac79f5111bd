"""The follow-up of stalled referrals, ``referral_followups`` (referral_api.followup.tables).

Revision ID: 0006
Revises: 0005
"""

from alembic import op
from referral_api.followup.tables import metadata

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    metadata.create_all(op.get_bind())


def downgrade() -> None:
    metadata.drop_all(op.get_bind())
