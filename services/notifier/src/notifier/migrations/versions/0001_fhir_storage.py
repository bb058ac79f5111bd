"""The FHIR store: resources, versions, search index tables, conditional guards.

Revision ID: 0001
Revises:
"""

from closedloop.fhir.storage import revisions

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    revisions.upgrade_0001()


def downgrade() -> None:
    revisions.downgrade_0001()
