"""The patient-voice answers, ``voice_responses`` and ``voice_answers`` (referral_api.voice.tables).

Revision ID: 0007
Revises: 0006
"""

from alembic import op
from referral_api.voice.tables import metadata

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    metadata.create_all(op.get_bind())


def downgrade() -> None:
    metadata.drop_all(op.get_bind())
