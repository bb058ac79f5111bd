"""A new resource in one statement on PostgreSQL.

A create writes the ``resources`` row, its first ``resource_versions`` row and the search index
rows (one table per kind). Statement by statement that is five or six round trips, each with
SQLAlchemy's compile and execution steps around it, and together they cost more than the rest
of a create. Here they go as one ``WITH ... INSERT`` whose index rows arrive as arrays
(``unnest``): one round trip, and the SQL text (cached per set of index kinds) is a prepared
statement after its first use, sent straight to asyncpg (``db.direct``). The rows are the
same; a unique-key collision still raises SQLAlchemy's ``IntegrityError``.

SQLite keeps the statement-by-statement path: it has no round trips to save.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection

from closedloop.db.direct import fetch_value
from closedloop.fhir.storage.tables import INDEX_TABLES

_KEYS = frozenset(("id", "res_pk", "resource_type", "param"))
_ARRAY_TYPES = {int: "bigint[]", float: "float8[]", str: "text[]"}
# resources + resource_versions parameters: type, id, version, instant, content, method
_FIXED = 6


@cache
def _value_columns(kind: str) -> tuple[tuple[str, str], ...]:
    """(column, array type) of the kind's table, beside the keys every index row has."""
    table: Table = INDEX_TABLES[kind]
    return tuple(
        (c.name, _ARRAY_TYPES[c.type.python_type]) for c in table.columns if c.name not in _KEYS
    )


@cache
def _statement(kinds: tuple[str, ...]) -> str:
    parts = [
        "WITH r AS (INSERT INTO resources "
        "(resource_type, id, version_id, last_updated, deleted, content) "
        "VALUES ($1::varchar, $2::varchar, $3::integer, $4::bigint, false, $5::text) "
        "RETURNING pk), "
        "v AS (INSERT INTO resource_versions "
        "(res_pk, resource_type, id, version_id, last_updated, method, content) "
        "SELECT pk, $1::varchar, $2::varchar, $3::integer, $4::bigint, $6::varchar, $5::text "
        "FROM r)"
    ]
    n = _FIXED
    for i, kind in enumerate(kinds):
        columns = _value_columns(kind)
        arrays = [f"${n + 1}::text[]"]  # param
        arrays += [f"${n + 2 + j}::{array}" for j, (_, array) in enumerate(columns)]
        n += 1 + len(columns)
        names = ", ".join(["param", *(name for name, _ in columns)])
        parts.append(
            f", i{i} AS (INSERT INTO {INDEX_TABLES[kind].name} "
            f"(res_pk, resource_type, {names}) "
            f"SELECT r.pk, $1::varchar, u.* FROM r, unnest({', '.join(arrays)}) AS u)"
        )
    parts.append(" SELECT pk FROM r")
    return "".join(parts)


async def insert_first_version(
    conn: AsyncConnection,
    resource_type: str,
    resource_id: str,
    version_id: int,
    now: int,
    content: str,
    method: str,
    index_rows: dict[str, list[dict[str, Any]]],
) -> int:
    """Insert the resource, its version row and its index rows; return its ``pk``."""
    kinds = tuple(kind for kind, rows in index_rows.items() if rows)
    params: list[Any] = [resource_type, resource_id, version_id, now, content, method]
    for kind in kinds:
        rows = index_rows[kind]
        params.append([row["param"] for row in rows])
        for name, _ in _value_columns(kind):
            params.append([row.get(name) for row in rows])
    pk: int = await fetch_value(conn, _statement(kinds), params)
    return pk
