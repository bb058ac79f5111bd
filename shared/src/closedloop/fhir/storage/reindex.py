"""Rebuild the search index rows of stored resources, e.g. after a search parameter changed.

Runs in batches (one transaction each) in pk order, so it can be interrupted and rerun, and
live traffic keeps working meanwhile: a resource written during the run is indexed by its own
write, and rewriting its rows again here is harmless.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson
from sqlalchemy import select

from closedloop.db.engine import Database
from closedloop.fhir.storage.indexer import Indexer
from closedloop.fhir.storage.tables import resources


async def reindex(
    db: Database,
    indexer: Indexer,
    resource_types: list[str],
    *,
    batch_size: int = 500,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    counts: dict[str, int] = {}
    r = resources.c
    for rtype in resource_types:
        done, last_pk = 0, 0
        while True:
            async with db.write() as conn:
                rows = (
                    await conn.execute(
                        select(r.pk, r.content)
                        .where(r.resource_type == rtype, r.deleted.is_(False), r.pk > last_pk)
                        .order_by(r.pk)
                        .limit(batch_size)
                    )
                ).all()
                for pk, content in rows:
                    await indexer.write(conn, pk, rtype, orjson.loads(content), replace=True)
            if not rows:
                break
            last_pk = rows[-1].pk
            done += len(rows)
            if progress:
                progress(rtype, done)
        counts[rtype] = done
    return counts
