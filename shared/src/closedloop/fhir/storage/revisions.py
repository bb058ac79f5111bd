"""Storage schema revisions, called from each service's Alembic migrations.

Every service owns its database and its Alembic history; the FHIR store's tables are the same in
all of them, so the operations live here once. Revision 1 creates the tables of ``tables.py``.
"""

from __future__ import annotations

from alembic import op

from closedloop.fhir.storage.tables import metadata


def upgrade_0001() -> None:
    metadata.create_all(op.get_bind())


def downgrade_0001() -> None:
    metadata.drop_all(op.get_bind())
