"""The floor bench/search.py measures referral-api against: the same SQL a FHIR read and a token
search need, behind the thinnest app that can serve it (Starlette, a plain asyncpg pool, one
uvicorn worker, like the service). What the service adds on top (routing, request context,
hooks, SQLAlchemy, the Bundle) is what the ratio of the two shows.

    python bench/raw_endpoint.py --port 8090 --database-url postgresql://...
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import uvicorn
from closedloop.testing import free_port, running_process
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


def create_app(dsn: str) -> Starlette:
    pool: asyncpg.Pool | None = None

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

    return Starlette(
        routes=[
            Route("/readyz", readyz),
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
