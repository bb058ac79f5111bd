"""Storage schema revisions, called from each service's Alembic migrations.

Every service owns its database and its Alembic history; the FHIR store's tables are the same in
all of them, so the operations live here once. Revision 1 creates the resource, history and
typed index tables; revision 2 adds full text (``sp_text``, with PostgreSQL's GIN index or
SQLite's FTS5 table) and areas (``sp_area``). Each creates exactly its own tables, so a database
made by revision 1 before revision 2 existed upgrades like a new one.
"""

from __future__ import annotations

from alembic import op

from closedloop.fhir.storage.tables import REVISION_1_TABLES, REVISION_2_TABLES, metadata

_SQLITE_FTS = (
    "CREATE VIRTUAL TABLE sp_text_fts USING fts5(document, content='sp_text', "
    "content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER sp_text_fts_insert AFTER INSERT ON sp_text BEGIN "
    "INSERT INTO sp_text_fts(rowid, document) VALUES (new.id, new.document); END",
    "CREATE TRIGGER sp_text_fts_delete AFTER DELETE ON sp_text BEGIN "
    "INSERT INTO sp_text_fts(sp_text_fts, rowid, document) "
    "VALUES ('delete', old.id, old.document); END",
    "CREATE TRIGGER sp_text_fts_update AFTER UPDATE ON sp_text BEGIN "
    "INSERT INTO sp_text_fts(sp_text_fts, rowid, document) "
    "VALUES ('delete', old.id, old.document); "
    "INSERT INTO sp_text_fts(rowid, document) VALUES (new.id, new.document); END",
)
_POSTGRES_FTS = (
    "CREATE INDEX ix_sp_text_tsv ON sp_text USING gin (to_tsvector('simple'::regconfig, document))",
)


def upgrade_0001() -> None:
    metadata.create_all(op.get_bind(), tables=list(REVISION_1_TABLES))


def downgrade_0001() -> None:
    metadata.drop_all(op.get_bind(), tables=list(REVISION_1_TABLES))


def upgrade_0002() -> None:
    bind = op.get_bind()
    metadata.create_all(bind, tables=list(REVISION_2_TABLES))
    for statement in _SQLITE_FTS if bind.dialect.name == "sqlite" else _POSTGRES_FTS:
        op.execute(statement)


def downgrade_0002() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS sp_text_fts")
    metadata.drop_all(bind, tables=list(REVISION_2_TABLES))
