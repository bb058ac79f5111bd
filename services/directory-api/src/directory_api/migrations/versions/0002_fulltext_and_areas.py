"""The FHIR store's full-text (``sp_text``) and area (``sp_area``) index tables.

Revision ID: 0002
Revises: 0001
"""

from closedloop.fhir.storage import revisions

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    revisions.upgrade_0002()


def downgrade() -> None:
    revisions.downgrade_0002()
