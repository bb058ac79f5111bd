"""The FHIR store's full-text (``sp_text``) and area (``sp_area``) index tables.

Revision ID: 0003
Revises: 0002
"""

from closedloop.fhir.storage import revisions

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    revisions.upgrade_0002()


def downgrade() -> None:
    revisions.downgrade_0002()
