"""Tables of the FHIR store, the same in every service's own database.

- ``resources``: one row per current resource; ``content`` is the JSON text served on reads as is.
- ``resource_versions``: every version (history); ``seq`` orders system-level history.
- ``sp_*``: typed search index tables, written in the same transaction as the resource and keyed
  by the resource's surrogate ``res_pk``. Each row carries ``resource_type`` and ``param`` so a
  search touches one index without a join to ``resources`` until the final fetch.
- ``conditional_guards``: one row per (type, conditional criteria); locking it serialises
  conditional creates/updates with the same criteria, so 50 identical concurrent requests still
  make one resource.

Instants are stored as integer microseconds since the Unix epoch: exact, portable and sortable
on both databases. A change here needs a new storage revision in ``storage/revisions.py``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# SQLite only auto-increments an INTEGER PRIMARY KEY (its rowid); PostgreSQL wants BIGSERIAL.
PK = BigInteger().with_variant(Integer(), "sqlite")
# Index values compare in byte order on PostgreSQL, as SQLite does: the same sort order on both,
# and a LIKE 'prefix%' can use the btree index whatever the server's locale.
KEY = String().with_variant(String(collation="C"), "postgresql")

resources = Table(
    "resources",
    metadata,
    Column("pk", PK, primary_key=True, autoincrement=True),
    Column("resource_type", String(64), nullable=False),
    Column("id", String(64), nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("last_updated", BigInteger, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("content", Text, nullable=True),
    UniqueConstraint("resource_type", "id", name="uq_resources_type_id"),
    Index("ix_resources_type_updated", "resource_type", "last_updated"),
)

resource_versions = Table(
    "resource_versions",
    metadata,
    Column("seq", PK, primary_key=True, autoincrement=True),
    Column("res_pk", BigInteger, nullable=False),
    Column("resource_type", String(64), nullable=False),
    Column("id", String(64), nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("last_updated", BigInteger, nullable=False),
    Column("method", String(8), nullable=False),
    Column("content", Text, nullable=True),
    UniqueConstraint("resource_type", "id", "version_id", name="uq_versions_type_id_version"),
    Index("ix_versions_type_updated", "resource_type", "last_updated"),
    Index("ix_versions_updated", "last_updated"),
)

conditional_guards = Table(
    "conditional_guards",
    metadata,
    Column("resource_type", String(64), primary_key=True),
    Column("criteria_hash", String(64), primary_key=True),
    Column("touched", BigInteger, nullable=False),
)


def _index_table(
    name: str, *cols: Column, indexes: tuple[tuple[str, ...], ...] = (), row_id: bool = False
) -> Table:
    return Table(
        name,
        metadata,
        *([Column("id", PK, primary_key=True, autoincrement=True)] if row_id else []),
        Column("res_pk", BigInteger, nullable=False),
        Column("resource_type", String(64), nullable=False),
        Column("param", String(64), nullable=False),
        *cols,
        Index(f"ix_{name}_res", "res_pk"),
        *(
            Index(f"ix_{name}_{i}", "resource_type", "param", *idx, "res_pk")
            for i, idx in enumerate(indexes)
        ),
    )


sp_token = _index_table(
    "sp_token",
    Column("system", KEY, nullable=True),
    Column("code", KEY, nullable=True),
    Column("text", KEY, nullable=True),  # lower-cased display/text for :text
    indexes=(("code", "system"),),
)
sp_string = _index_table(
    "sp_string",
    Column("value_norm", KEY, nullable=False),  # lower-cased, accents stripped
    Column("value_exact", KEY, nullable=False),
    indexes=(("value_norm",),),
)
sp_date = _index_table(
    "sp_date",
    Column("low", BigInteger, nullable=False),  # microseconds, inclusive
    Column("high", BigInteger, nullable=False),  # microseconds, inclusive
    indexes=(("low",), ("high",)),
)
sp_number = _index_table(
    "sp_number",
    Column("value", Float, nullable=False),
    Column("low", Float, nullable=False),
    Column("high", Float, nullable=False),
    indexes=(("value",),),
)
sp_quantity = _index_table(
    "sp_quantity",
    Column("system", KEY, nullable=True),
    Column("code", KEY, nullable=True),
    Column("value", Float, nullable=False),
    Column("low", Float, nullable=False),
    Column("high", Float, nullable=False),
    indexes=(("code", "value"),),
)
sp_reference = _index_table(
    "sp_reference",
    Column("target_type", String(64), nullable=True),
    Column("target_id", KEY, nullable=True),
    Column("target_url", KEY, nullable=True),  # absolute or canonical references
    indexes=(("target_id", "target_type"), ("target_url",)),
)
Index("ix_sp_reference_target", sp_reference.c.target_type, sp_reference.c.target_id)
sp_uri = _index_table(
    "sp_uri",
    Column("value", KEY, nullable=False),
    indexes=(("value",),),
)
sp_coords = _index_table(
    "sp_coords",
    Column("latitude", Float, nullable=False),
    Column("longitude", Float, nullable=False),
    indexes=(("latitude", "longitude"),),
)

# Full text (``_content``): one row per resource and parameter holding the normalised words
# (``fhir.search.index.text``). PostgreSQL searches it through a GIN index on
# ``to_tsvector('simple', document)``; SQLite through the FTS5 table ``sp_text_fts`` that
# triggers keep in step, keyed by ``id`` (a stable rowid). Both made by storage revision 2.
sp_text = _index_table(
    "sp_text",
    Column("document", Text, nullable=False),
    row_id=True,
)
# Areas (``contains``): the edges of a GeoJSON (multi)polygon boundary, one row per edge, with
# the edge's latitude span (``low``..``high``) indexed so a point test reads only the edges its
# latitude crosses (``fhir.search.areas``).
sp_area = _index_table(
    "sp_area",
    Column("lat1", Float, nullable=False),
    Column("lon1", Float, nullable=False),
    Column("lat2", Float, nullable=False),
    Column("lon2", Float, nullable=False),
    Column("low", Float, nullable=False),
    Column("high", Float, nullable=False),
    indexes=(("low",),),
)

# The tables storage revision 1 made; later revisions add the rest (``revisions.py``).
REVISION_1_TABLES = (
    resources,
    resource_versions,
    conditional_guards,
    sp_token,
    sp_string,
    sp_date,
    sp_number,
    sp_quantity,
    sp_reference,
    sp_uri,
    sp_coords,
)
REVISION_2_TABLES = (sp_text, sp_area)

INDEX_TABLES: dict[str, Table] = {
    "token": sp_token,
    "string": sp_string,
    "date": sp_date,
    "number": sp_number,
    "quantity": sp_quantity,
    "reference": sp_reference,
    "uri": sp_uri,
    "coords": sp_coords,
    "text": sp_text,
    "area": sp_area,
}
