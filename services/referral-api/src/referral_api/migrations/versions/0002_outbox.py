"""The referral event outbox and its dispatcher lease.

Revision ID: 0002
Revises: 0001
"""

from alembic import op
from referral_api.outbox.tables import metadata, outbox_leases

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    metadata.create_all(op.get_bind())
    op.bulk_insert(outbox_leases, [{"name": "dispatcher", "holder": None, "expires_at": 0}])


def downgrade() -> None:
    metadata.drop_all(op.get_bind())
