"""The floor bench/search.py and bench/crud.py measure referral-api against: the same SQL a FHIR
read, a token search and a create need, behind the thinnest app that can serve it (Starlette, a
plain asyncpg pool, one uvicorn worker, like the service). What the service adds on top
(routing, request context, hooks, validation, SQLAlchemy, the Bundle) is what the ratio of the
two shows.

``POST /create/{type}`` makes the writes the engine makes for a create, in one transaction: the
``resources`` row (JSON text with the server's id and ``meta`` stamped in, as the engine stores
it), the ``resource_versions`` row, and the search index rows, one multi-row INSERT per index
table. It does no FHIR validation, no profile or workflow rule and writes no outbox event
(referral-api's own additions). The index rows are the engine's own (``IndexExtractor`` of the
type, from the standard parameters plus referral-api's), computed once per distinct request
body and remembered: the bench posts one body, so the floor pays nothing for extraction, the
cheapest a hand-written endpoint could be (the rows depend on the body only; the id and meta
the server stamps are in no index). The statements are the plain ones a hand-written
endpoint sends (one per table, seven round trips with BEGIN and COMMIT); the engine sends the
same rows in one statement (``fhir/storage/first_version.py``), but adds its outbox INSERT, so
it makes four.

    python bench/raw_endpoint.py --port 8090 --database-url postgresql://...
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from typing import Any

import asyncpg
import orjson
import uvicorn
from closedloop.fhir.instant import format_instant, http_date, now_us
from closedloop.fhir.search.definitions import SearchParamRegistry, load_standard
from closedloop.testing import free_port, running_process
from referral_api.resources import RESOURCE_TYPES, SEARCH_PARAMS
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

READ_SQL = """
SELECT content FROM resources
WHERE resource_type = $1 AND id = $2 AND NOT deleted
"""
# The statement the engine runs for ``Task?identifier=system|value`` (one page of 50, plus one
# row that tells whether a next page exists), returning only the JSON text.
TOKEN_SQL = """
SELECT r.content FROM resources r
WHERE r.resource_type = $1 AND NOT r.deleted
  AND r.pk IN (
    SELECT t.res_pk FROM sp_token t
    WHERE t.resource_type = $1 AND t.param = $2 AND t.system = $3 AND t.code = $4
  )
ORDER BY r.pk
LIMIT 51
"""
FHIR_JSON = "application/fhir+json"
INSERT_RESOURCE_SQL = """
INSERT INTO resources (resource_type, id, version_id, last_updated, deleted, content)
VALUES ($1, $2, 1, $3, false, $4) RETURNING pk
"""
INSERT_VERSION_SQL = """
INSERT INTO resource_versions (res_pk, resource_type, id, version_id, last_updated, method,
  content)
VALUES ($1, $2, $3, 1, $4, 'POST', $5)
"""
# Index table kind -> its value columns, in the order of the INSERT
INDEX_COLUMNS: dict[str, tuple[str, ...]] = {
    "token": ("system", "code", "text"),
    "string": ("value_norm", "value_exact"),
    "date": ("low", "high"),
    "number": ("value", "low", "high"),
    "quantity": ("system", "code", "value", "low", "high"),
    "reference": ("target_type", "target_id", "target_url"),
    "uri": ("value",),
    "coords": ("latitude", "longitude"),
    "text": ("document",),
    "area": ("lat1", "lon1", "lat2", "lon2", "low", "high"),
}
ROWS_CACHE_LIMIT = 1024


@cache
def index_sql(kind: str, count: int) -> str:
    """One INSERT of ``count`` rows into the kind's ``sp_*`` table."""
    columns = ("res_pk", "resource_type", "param", *INDEX_COLUMNS[kind])
    width = len(columns)
    values = ", ".join(
        "(" + ", ".join(f"${r * width + c + 1}" for c in range(width)) + ")" for r in range(count)
    )
    return f"INSERT INTO sp_{kind} ({', '.join(columns)}) VALUES {values}"


class IndexRows:
    """Index rows per request body: the engine's extractors, each body's rows remembered."""

    def __init__(self) -> None:
        self.registry = SearchParamRegistry([*load_standard(RESOURCE_TYPES), *SEARCH_PARAMS])
        self.cache: dict[tuple[str, bytes], list[tuple[str, list[tuple[Any, ...]]]]] = {}

    def of(
        self, resource_type: str, body: bytes, resource: dict[str, Any]
    ) -> list[tuple[str, list[tuple[Any, ...]]]]:
        """(kind, rows as tuples of param and value columns) for the resource in ``body``."""
        key = (resource_type, body)
        found = self.cache.get(key)
        if found is None:
            extracted = self.registry.extractor(resource_type).extract(resource)
            found = [
                (kind, [(r["param"], *(r[c] for c in INDEX_COLUMNS[kind])) for r in rows])
                for kind, rows in extracted.items()
                if rows
            ]
            if len(self.cache) >= ROWS_CACHE_LIMIT:
                self.cache.clear()
            self.cache[key] = found
        return found


def create_app(dsn: str) -> Starlette:
    pool: asyncpg.Pool | None = None
    index_rows = IndexRows()

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        nonlocal pool
        # The service's SQLAlchemy pool: 10 connections plus 10 overflow.
        pool = await asyncpg.create_pool(dsn, min_size=10, max_size=20)
        try:
            yield
        finally:
            await pool.close()

    async def readyz(_request: Request) -> Response:
        return JSONResponse({"status": "ready"})

    async def read(request: Request) -> Response:
        assert pool is not None
        p = request.path_params
        content = await pool.fetchval(READ_SQL, p["resource_type"], p["id"])
        if content is None:
            return Response(status_code=404)
        return Response(content, media_type=FHIR_JSON)

    async def token(request: Request) -> Response:
        assert pool is not None
        p, q = request.path_params, request.query_params
        rows = await pool.fetch(
            TOKEN_SQL, p["resource_type"], p["param"], q.get("system"), q.get("code")
        )
        return Response("[" + ",".join(r[0] for r in rows) + "]", media_type=FHIR_JSON)

    async def create(request: Request) -> Response:
        assert pool is not None
        resource_type = request.path_params["resource_type"]
        body = await request.body()
        resource = orjson.loads(body)
        resource_id, now = str(uuid.uuid4()), now_us()
        meta = {**resource.get("meta", {}), "versionId": "1", "lastUpdated": format_instant(now)}
        stamped = {"resourceType": resource_type, "id": resource_id, "meta": meta}
        stamped.update((k, v) for k, v in resource.items() if k not in stamped)
        content = orjson.dumps(stamped).decode()
        index = index_rows.of(resource_type, body, resource)
        async with pool.acquire() as conn, conn.transaction():
            pk = await conn.fetchval(INSERT_RESOURCE_SQL, resource_type, resource_id, now, content)
            await conn.execute(INSERT_VERSION_SQL, pk, resource_type, resource_id, now, content)
            for kind, rows in index:
                args = [v for row in rows for v in (pk, resource_type, *row)]
                await conn.execute(index_sql(kind, len(rows)), *args)
        headers = {
            "Location": f"{request.base_url}{resource_type}/{resource_id}/_history/1",
            "ETag": 'W/"1"',
            "Last-Modified": http_date(now),
        }
        return Response(status_code=201, headers=headers, media_type=FHIR_JSON)

    return Starlette(
        routes=[
            Route("/readyz", readyz),
            Route("/create/{resource_type}", create, methods=["POST"]),
            Route("/read/{resource_type}/{id}", read),
            Route("/token/{resource_type}/{param}", token),
        ],
        lifespan=lifespan,
    )


@asynccontextmanager
async def running_raw_endpoint(database_url: str) -> AsyncIterator[str]:
    """Start this app as its own process on a free loopback port; yield its base URL."""
    port = free_port()
    args = [sys.executable, __file__, "--port", str(port), "--database-url", database_url]
    async with running_process(args, port, name="raw endpoint") as base:
        yield base


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", required=True)
    args = parser.parse_args()
    dsn = args.database_url.replace("postgresql+asyncpg://", "postgresql://")
    uvicorn.run(
        create_app(dsn),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
