"""Where each HealthcareService is, by category (``search/sites.py``), filled from the index.

Revision ID: 0003
Revises: 0002
"""

from alembic import op
from directory_api.search.sites import fill_statement, metadata

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    metadata.create_all(op.get_bind())
    op.execute(fill_statement())


def downgrade() -> None:
    metadata.drop_all(op.get_bind())
