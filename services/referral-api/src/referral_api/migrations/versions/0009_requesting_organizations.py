"""Which Organization requested each Task and ServiceRequest, ``requesting_organizations``
(referral_api.access.requesters), filled from the reference index of what is stored.

Revision ID: 0009
Revises: 0008
"""

from alembic import op
from referral_api.access.requesters import fill, metadata

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    metadata.create_all(bind)
    bind.execute(fill())


def downgrade() -> None:
    metadata.drop_all(op.get_bind())
