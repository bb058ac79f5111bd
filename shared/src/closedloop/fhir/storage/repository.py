"""The SQL repository: one method per FHIR interaction (http://hl7.org/fhir/R4/http.html).

Writes happen inside a ``UnitOfWork`` (one database transaction). A single REST call opens one;
a transaction Bundle runs all its entries in one, so any failure rolls back everything. Each
write validates the resource, fires the ``before_*`` hooks, stores the current row and a version
row, and rewrites the resource's search index rows, all in that transaction. ``before_commit``
hooks then see every change (the outbox writes its rows there); ``after_commit`` hooks run once
the data is durable.

Conditional interactions need a search. The repository does not import the search engine: it
is handed a ``Matcher`` (criteria -> matching ids) when built, which keeps storage below search.
"""

from __future__ import annotations

import copy
import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import jsonpatch
import orjson
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from closedloop import errors
from closedloop.context import RequestContext
from closedloop.db.engine import Database
from closedloop.fhir.instant import format_instant, now_us
from closedloop.fhir.storage.first_version import insert_first_version
from closedloop.fhir.storage.indexer import Indexer
from closedloop.fhir.storage.records import StoredResource, WriteResult
from closedloop.fhir.storage.tables import conditional_guards, resource_versions, resources
from closedloop.fhir.validation import check_id, validate_resource
from closedloop.hooks import Change, HookPoint, Hooks, PlannedWrite, UnitOfWork

_READ_SQL = (
    "SELECT version_id, last_updated, content FROM resources WHERE resource_type = $1 AND id = $2"
)
_R = resources.c

Matcher = Callable[[AsyncConnection, str, str], Awaitable[list[str]]]
"""(connection, resource type, query string) -> ids of the current resources that match."""


def dumps(resource: dict[str, Any]) -> str:
    return orjson.dumps(resource).decode()


def _strip_meta_versions(resource: dict[str, Any]) -> dict[str, Any]:
    out = dict(resource)
    meta = dict(out.get("meta") or {})
    meta.pop("versionId", None)
    meta.pop("lastUpdated", None)
    if meta:
        out["meta"] = meta
    else:
        out.pop("meta", None)
    return out


def _stamp(
    resource: dict[str, Any], resource_type: str, resource_id: str, version_id: int, now: int
) -> None:
    """Set the server-owned id and meta fields, in the usual order for readable output."""
    meta = dict(resource.get("meta") or {})
    meta["versionId"] = str(version_id)
    meta["lastUpdated"] = format_instant(now)
    rest = {k: v for k, v in resource.items() if k not in ("resourceType", "id", "meta")}
    resource.clear()
    resource.update({"resourceType": resource_type, "id": resource_id, "meta": meta})
    resource.update(rest)


def criteria_hash(resource_type: str, criteria: str) -> str:
    parts = sorted(p for p in criteria.lstrip("?").split("&") if p)
    return hashlib.sha256(f"{resource_type}?{'&'.join(parts)}".encode()).hexdigest()


class Repository:
    """FHIR interactions over one service's database."""

    def __init__(
        self,
        db: Database,
        indexer: Indexer,
        hooks: Hooks | None = None,
        matcher: Matcher | None = None,
    ) -> None:
        self.db = db
        self.indexer = indexer
        self.hooks = hooks or Hooks()
        self.matcher = matcher

    # -- units of work ---------------------------------------------------------------------

    @asynccontextmanager
    async def unit_of_work(
        self, ctx: RequestContext, planned: list[PlannedWrite] | None = None
    ) -> AsyncIterator[UnitOfWork]:
        """One transaction; commits when the block ends without error, else rolls back.
        ``planned`` (the writes the block will make, as far as the caller knows them) go to the
        ``before_transaction`` hooks first, outside the transaction."""
        if planned:
            await self.plan(ctx, planned)
        changes: list[Change]
        try:
            async with self.db.write() as conn:
                uow = UnitOfWork(conn, ctx)
                yield uow
                if uow.changes:
                    await self.hooks.fire(HookPoint.BEFORE_COMMIT, ctx, uow)
                changes = uow.changes
        except IntegrityError as exc:
            raise errors.conflict(
                "The change collided with a concurrent change to the same resource; retry it",
                cl_code="CL-2409",
            ) from exc
        if changes:
            await self.hooks.fire(HookPoint.AFTER_COMMIT, ctx, changes)

    async def plan(self, ctx: RequestContext, planned: list[PlannedWrite]) -> None:
        """Show the ``before_transaction`` hooks what is about to be written (no transaction is
        open; they may refuse it)."""
        if self.hooks.has(HookPoint.BEFORE_TRANSACTION):
            await self.hooks.fire(HookPoint.BEFORE_TRANSACTION, ctx, planned)

    # -- reads -----------------------------------------------------------------------------

    async def read(
        self, resource_type: str, resource_id: str, conn: AsyncConnection | None = None
    ) -> StoredResource:
        """read: http://hl7.org/fhir/R4/http.html#read (410 once deleted)."""
        check_id(resource_id)
        if conn is None:
            row = await self.db.fetch_row(_READ_SQL, resource_type, resource_id)
        else:
            row = (
                await conn.execute(
                    select(_R.version_id, _R.last_updated, _R.content).where(
                        _R.resource_type == resource_type, _R.id == resource_id
                    )
                )
            ).first()
        if row is None:
            raise errors.not_found(f"{resource_type}/{resource_id} is not known")
        version_id, last_updated, content = row[0], row[1], row[2]
        if content is None:
            raise errors.gone(f"{resource_type}/{resource_id} was deleted", version_id)
        return StoredResource(resource_type, resource_id, version_id, last_updated, content)

    async def vread(self, resource_type: str, resource_id: str, version_id: int) -> StoredResource:
        """vread: http://hl7.org/fhir/R4/http.html#vread."""
        check_id(resource_id)
        v = resource_versions.c
        stmt = select(v.last_updated, v.content, v.method).where(
            v.resource_type == resource_type, v.id == resource_id, v.version_id == version_id
        )
        async with self.db.read() as conn:
            row = (await conn.execute(stmt)).first()
        if row is None:
            raise errors.not_found(
                f"{resource_type}/{resource_id}/_history/{version_id} is not known"
            )
        if row.content is None:
            raise errors.gone(
                f"{resource_type}/{resource_id} version {version_id} is a deletion", version_id
            )
        return StoredResource(
            resource_type, resource_id, version_id, row.last_updated, row.content, row.method
        )

    async def history(
        self,
        resource_type: str | None = None,
        resource_id: str | None = None,
        since: int | None = None,
        count: int = 100,
        before_seq: int | None = None,
    ) -> list[tuple[int, StoredResource]]:
        """history at instance, type or system level, newest first, keyed by ``seq`` for paging."""
        if resource_id is not None:
            check_id(resource_id)
        v = resource_versions.c
        stmt = select(
            v.seq, v.resource_type, v.id, v.version_id, v.last_updated, v.content, v.method
        )
        if resource_type is not None:
            stmt = stmt.where(v.resource_type == resource_type)
        if resource_id is not None:
            stmt = stmt.where(v.id == resource_id)
        if since is not None:
            stmt = stmt.where(v.last_updated >= since)
        if before_seq is not None:
            stmt = stmt.where(v.seq < before_seq)
        stmt = stmt.order_by(v.seq.desc()).limit(count)
        async with self.db.read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [
            (
                r.seq,
                StoredResource(
                    r.resource_type, r.id, r.version_id, r.last_updated, r.content, r.method
                ),
            )
            for r in rows
        ]

    async def validate(
        self, ctx: RequestContext, resource_type: str, resource: Any
    ) -> list[errors.Issue]:
        """The checks a write would run, without writing: structure, then the ``validate``
        hooks (profiles). Raises ``FhirError`` on errors; returns warnings."""
        validate_resource(resource, resource_type)
        report: list[errors.Issue] = []
        await self.hooks.fire(HookPoint.VALIDATE, ctx, resource_type, resource, report)
        return report

    # -- writes ----------------------------------------------------------------------------

    async def create(
        self,
        uow: UnitOfWork,
        resource_type: str,
        resource: dict[str, Any],
        *,
        if_none_exist: str | None = None,
        assigned_id: str | None = None,
    ) -> WriteResult:
        """create and conditional create: http://hl7.org/fhir/R4/http.html#ccreate.

        With ``if_none_exist``, the criteria's guard row is locked first, so concurrent
        identical requests run one after another and all but the first find its resource.
        """
        validate_resource(resource, resource_type)
        if if_none_exist:
            ids = await self.match_locked(uow.conn, resource_type, if_none_exist)
            if len(ids) > 1:
                raise errors.precondition_failed(
                    f"If-None-Exist criteria matched {len(ids)} {resource_type} resources"
                )
            if ids:
                return WriteResult(
                    await self.read(resource_type, ids[0], uow.conn), created=False, changed=False
                )
        resource_id = assigned_id or str(uuid.uuid4())
        return await self._insert(uow, resource_type, resource_id, resource, "POST")

    async def update(
        self,
        uow: UnitOfWork,
        resource_type: str,
        resource_id: str,
        resource: dict[str, Any],
        *,
        if_match: int | None = None,
        method: str = "PUT",
    ) -> WriteResult:
        """update, or create with the client's id: http://hl7.org/fhir/R4/http.html#update."""
        check_id(resource_id)
        validate_resource(resource, resource_type)
        if resource.get("id") != resource_id:
            raise errors.invalid(
                f"The resource id {resource.get('id')!r} does not match the URL id {resource_id!r}",
                (f"{resource_type}.id",),
                cl_code="CL-2400",
            )
        current = await self._lock_current(uow.conn, resource_type, resource_id)
        if current is None:
            if if_match is not None:
                raise errors.precondition_failed(
                    f"If-Match given but {resource_type}/{resource_id} does not exist"
                )
            return await self._insert(uow, resource_type, resource_id, resource, method)
        pk, version_id, content = current
        if if_match is not None and if_match != version_id:
            raise errors.precondition_failed(
                f"If-Match version {if_match} does not match the current version {version_id}"
            )
        previous = orjson.loads(content) if content is not None else None
        if previous is not None and _strip_meta_versions(previous) == _strip_meta_versions(
            resource
        ):
            stored = StoredResource(
                resource_type,
                resource_id,
                version_id,
                await self._last_updated(uow.conn, pk),
                content,
            )
            return WriteResult(stored, created=False, changed=False)
        return await self._write_version(
            uow, pk, resource_type, resource_id, version_id + 1, resource, previous, method
        )

    async def conditional_update(
        self,
        uow: UnitOfWork,
        resource_type: str,
        criteria: str,
        resource: dict[str, Any],
        *,
        if_match: int | None = None,
    ) -> WriteResult:
        """http://hl7.org/fhir/R4/http.html#cond-update: no match creates, one match updates."""
        ids = await self.match_locked(uow.conn, resource_type, criteria)
        if len(ids) > 1:
            raise errors.precondition_failed(
                f"Conditional update criteria matched {len(ids)} {resource_type} resources"
            )
        if ids:
            if resource.get("id") not in (None, ids[0]):
                raise errors.invalid(
                    f"The resource id {resource.get('id')!r} differs from the matched "
                    f"{resource_type}/{ids[0]}",
                    (f"{resource_type}.id",),
                    cl_code="CL-2400",
                )
            resource = {**resource, "id": ids[0]}
            return await self.update(uow, resource_type, ids[0], resource, if_match=if_match)
        resource_id = resource.get("id") or str(uuid.uuid4())
        validate_resource({**resource, "id": resource_id}, resource_type)
        if await self._lock_current(uow.conn, resource_type, resource_id) is not None:
            raise errors.conflict(
                f"{resource_type}/{resource_id} exists but does not match the criteria",
                cl_code="CL-2410",
            )
        return await self._insert(uow, resource_type, resource_id, resource, "PUT")

    async def patch(
        self,
        uow: UnitOfWork,
        resource_type: str,
        resource_id: str,
        operations: Any,
        *,
        if_match: int | None = None,
    ) -> WriteResult:
        """JSON Patch: http://hl7.org/fhir/R4/http.html#patch."""
        check_id(resource_id)
        current = await self._lock_current(uow.conn, resource_type, resource_id)
        if current is None:
            raise errors.not_found(f"{resource_type}/{resource_id} is not known")
        _pk, version_id, content = current
        if content is None:
            raise errors.gone(f"{resource_type}/{resource_id} was deleted", version_id)
        if if_match is not None and if_match != version_id:
            raise errors.precondition_failed(
                f"If-Match version {if_match} does not match the current version {version_id}"
            )
        if not isinstance(operations, list):
            raise errors.invalid(
                "A JSON Patch document must be an array of operations", cl_code="CL-2401"
            )
        try:
            patched = jsonpatch.JsonPatch(operations).apply(orjson.loads(content))
        except jsonpatch.JsonPatchTestFailed as exc:
            raise errors.unprocessable(
                f"JSON Patch test failed: {exc}", cl_code="CL-2422"
            ) from None
        except (
            jsonpatch.JsonPatchException,
            jsonpatch.JsonPointerException,
            TypeError,
            KeyError,
            ValueError,
        ) as exc:
            raise errors.unprocessable(
                f"JSON Patch could not be applied: {exc}", cl_code="CL-2422"
            ) from None
        if not isinstance(patched, dict) or patched.get("id") != resource_id:
            raise errors.unprocessable(
                "JSON Patch may not change the resource id or type",
                (f"{resource_type}.id",),
                cl_code="CL-2423",
            )
        return await self.update(uow, resource_type, resource_id, patched, method="PATCH")

    async def delete(
        self, uow: UnitOfWork, resource_type: str, resource_id: str
    ) -> WriteResult | None:
        """delete: http://hl7.org/fhir/R4/http.html#delete. None when already deleted."""
        check_id(resource_id)
        current = await self._lock_current(uow.conn, resource_type, resource_id)
        if current is None:
            raise errors.not_found(f"{resource_type}/{resource_id} is not known")
        pk, version_id, content = current
        if content is None:
            return None
        previous = orjson.loads(content)
        change = Change("delete", resource_type, resource_id, version_id + 1, None, previous)
        await self.hooks.fire(HookPoint.BEFORE_DELETE, uow.ctx, change)
        now = await self._next_instant(uow.conn, pk)
        await uow.conn.execute(
            update(resources)
            .where(resources.c.pk == pk)
            .values(version_id=version_id + 1, last_updated=now, deleted=True, content=None)
        )
        await self._insert_version(
            uow.conn, pk, resource_type, resource_id, version_id + 1, now, "DELETE", None
        )
        await self.indexer.clear(uow.conn, pk)
        uow.changes.append(change)
        return WriteResult(
            StoredResource(resource_type, resource_id, version_id + 1, now, None, "DELETE")
        )

    async def conditional_delete(
        self, uow: UnitOfWork, resource_type: str, criteria: str
    ) -> list[WriteResult]:
        """Conditional delete of every match (at most 100, else 412)."""
        if self.matcher is None:
            raise errors.not_supported("Conditional interactions need a search engine")
        ids = await self.matcher(uow.conn, resource_type, criteria)
        if len(ids) > 100:
            raise errors.precondition_failed(
                f"Conditional delete criteria matched {len(ids)} resources (at most 100)"
            )
        results = []
        for rid in ids:
            result = await self.delete(uow, resource_type, rid)
            if result is not None:
                results.append(result)
        return results

    # -- internals -------------------------------------------------------------------------

    async def match_locked(
        self, conn: AsyncConnection, resource_type: str, criteria: str
    ) -> list[str]:
        if self.matcher is None:
            raise errors.not_supported("Conditional interactions need a search engine")
        values = {
            "resource_type": resource_type,
            "criteria_hash": criteria_hash(resource_type, criteria),
            "touched": now_us(),
        }
        ins = pg_insert if self.db.postgres else sqlite_insert
        stmt = ins(conditional_guards).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["resource_type", "criteria_hash"],
            set_={"touched": stmt.excluded.touched},
        )
        # Locks the guard row until commit: a concurrent twin waits here, then (in a new
        # statement snapshot) sees what the first one created.
        await conn.execute(stmt)
        return await self.matcher(conn, resource_type, criteria)

    async def _lock_current(
        self, conn: AsyncConnection, resource_type: str, resource_id: str
    ) -> tuple[int, int, str | None] | None:
        r = resources.c
        stmt = (
            select(r.pk, r.version_id, r.content)
            .where(r.resource_type == resource_type, r.id == resource_id)
            .with_for_update()
        )
        row = (await conn.execute(stmt)).first()
        return None if row is None else (row.pk, row.version_id, row.content)

    async def _last_updated(self, conn: AsyncConnection, pk: int) -> int:
        return (
            await conn.execute(select(resources.c.last_updated).where(resources.c.pk == pk))
        ).scalar_one()

    async def _next_instant(self, conn: AsyncConnection, pk: int) -> int:
        """Now, but never at or before the previous version's instant (clocks can step back)."""
        now = now_us()
        last = await self._last_updated(conn, pk)
        return now if now > last else last + 1

    async def _insert(
        self,
        uow: UnitOfWork,
        resource_type: str,
        resource_id: str,
        resource: dict[str, Any],
        method: str,
    ) -> WriteResult:
        resource = copy.copy(resource)
        change = Change("create", resource_type, resource_id, 1, resource)
        await self.hooks.fire(HookPoint.VALIDATE, uow.ctx, resource_type, resource, change.warnings)
        await self.hooks.fire(HookPoint.BEFORE_CREATE, uow.ctx, change)
        now = now_us()
        _stamp(resource, resource_type, resource_id, 1, now)
        content = dumps(resource)
        if self.db.postgres:  # one round trip for every row (``first_version``)
            await insert_first_version(
                uow.conn,
                resource_type,
                resource_id,
                1,
                now,
                content,
                method,
                self.indexer.rows(resource_type, resource),
            )
        else:
            pk = (
                await uow.conn.execute(
                    resources.insert()
                    .values(
                        resource_type=resource_type,
                        id=resource_id,
                        version_id=1,
                        last_updated=now,
                        deleted=False,
                        content=content,
                    )
                    .returning(resources.c.pk)
                )
            ).scalar_one()
            await self._insert_version(
                uow.conn, pk, resource_type, resource_id, 1, now, method, content
            )
            await self.indexer.write(uow.conn, pk, resource_type, resource, replace=False)
        uow.changes.append(change)
        return WriteResult(
            StoredResource(resource_type, resource_id, 1, now, content, method),
            created=True,
            warnings=change.warnings,
        )

    async def _write_version(
        self,
        uow: UnitOfWork,
        pk: int,
        resource_type: str,
        resource_id: str,
        version_id: int,
        resource: dict[str, Any],
        previous: dict[str, Any] | None,
        method: str,
    ) -> WriteResult:
        resource = copy.copy(resource)
        change = Change(
            "update" if previous is not None else "create",
            resource_type,
            resource_id,
            version_id,
            resource,
            previous,
        )
        await self.hooks.fire(HookPoint.VALIDATE, uow.ctx, resource_type, resource, change.warnings)
        await self.hooks.fire(
            HookPoint.BEFORE_UPDATE if previous is not None else HookPoint.BEFORE_CREATE,
            uow.ctx,
            change,
        )
        now = await self._next_instant(uow.conn, pk)
        _stamp(resource, resource_type, resource_id, version_id, now)
        content = dumps(resource)
        await uow.conn.execute(
            update(resources)
            .where(resources.c.pk == pk)
            .values(version_id=version_id, last_updated=now, deleted=False, content=content)
        )
        await self._insert_version(
            uow.conn, pk, resource_type, resource_id, version_id, now, method, content
        )
        await self.indexer.write(
            uow.conn, pk, resource_type, resource, replace=True, previous=previous
        )
        uow.changes.append(change)
        return WriteResult(
            StoredResource(resource_type, resource_id, version_id, now, content, method),
            created=previous is None,
            warnings=change.warnings,
        )

    async def _insert_version(
        self,
        conn: AsyncConnection,
        pk: int,
        resource_type: str,
        resource_id: str,
        version_id: int,
        now: int,
        method: str,
        content: str | None,
    ) -> None:
        await conn.execute(
            resource_versions.insert().values(
                res_pk=pk,
                resource_type=resource_type,
                id=resource_id,
                version_id=version_id,
                last_updated=now,
                method=method,
                content=content,
            )
        )
