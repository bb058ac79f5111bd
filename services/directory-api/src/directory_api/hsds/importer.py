"""Write mapped resources through the Repository in batches: one transaction per batch, the
batch's current versions read in one query, unchanged resources not written (no new version)."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from closedloop import errors
from closedloop.context import SYSTEM
from closedloop.fhir.server import FhirServer
from closedloop.fhir.storage.repository import _strip_meta_versions
from closedloop.fhir.storage.tables import resources as resources_table
from sqlalchemy import select
from tqdm import tqdm

from directory_api.hsds.mapping import map_service
from directory_api.hsds.model import Rejection
from directory_api.hsds.readers import load
from directory_api.hsds.report import Report, find_duplicates

BATCH = 300
# PostgreSQL takes several batches at once (each its own transaction; a resource is in one
# batch only, so they never collide); SQLite has one writer, so one batch at a time.
POSTGRES_IN_FLIGHT = 4
Pending = tuple[str, dict[str, Any], str, int | str]


async def _current(server: FhirServer, batch: list[Pending]) -> dict[tuple[str, str], Any]:
    r = resources_table.c
    out: dict[tuple[str, str], Any] = {}
    by_type: dict[str, list[str]] = {}
    for rtype, res, _f, _r in batch:
        by_type.setdefault(rtype, []).append(res["id"])
    async with server.db.read() as conn:
        for rtype, ids in by_type.items():
            rows = await conn.execute(
                select(r.id, r.content).where(r.resource_type == rtype, r.id.in_(ids))
            )
            for rid, content in rows:
                out[(rtype, rid)] = orjson.loads(content) if content is not None else None
    return out


async def _write(server: FhirServer, batch: list[Pending], report: Report) -> None:
    current = await _current(server, batch)
    todo: list[Pending] = []
    for item in batch:
        rtype, res, _file, _row = item
        old = current.get((rtype, res["id"]))
        if old is not None and _strip_meta_versions(old) == _strip_meta_versions(res):
            report.count(rtype, "unchanged")
        else:
            todo.append(item)
    if not todo:
        return
    try:
        await _commit(server, todo, report)
    except errors.FhirError:
        # the repository validates each write; one invalid resource must not sink the batch,
        # so the batch is retried one resource per transaction and only the bad one rejected
        for item in todo:
            try:
                await _commit(server, [item], report)
            except errors.FhirError as exc:
                report.reject(Rejection(item[2], item[3], item[0], f"invalid FHIR: {exc}"))


async def _commit(server: FhirServer, todo: list[Pending], report: Report) -> None:
    outcomes = []
    async with server.repo.unit_of_work(SYSTEM) as uow:
        for rtype, res, _file, _row in todo:
            result = await server.repo.update(uow, rtype, res["id"], res, method="PUT")
            outcomes.append(
                (
                    rtype,
                    "created" if result.created else "updated" if result.changed else "unchanged",
                )
            )
    for rtype, outcome in outcomes:
        report.count(rtype, outcome)


def rows_used(service: dict[str, Any], skip: set[tuple[str, Any]]) -> set[tuple[str, Any]]:
    """The (file, row) of every record joined into an imported service, leaving out records
    the mapping rejected (and what hangs off them); the service's own row always counts."""
    found: set[tuple[str, Any]] = set()
    stack: list[Any] = [service]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        where = node.get("_origin")
        if isinstance(where, tuple):
            if where in skip and node is not service:
                continue
            found.add(where)
        stack.extend(v for k, v in node.items() if isinstance(v, (dict, list)))
    return found


async def import_path(
    server: FhirServer, path: Path, source: str, default_tz: str, progress: bool = True
) -> Report:
    """Read PATH, map and write everything; bad records go to the report, never raise."""
    loaded = load(path)
    report = Report(source=source, path=str(path), format=loaded.format, files=loaded.files)
    report.services_read = sum(f.rows for f in loaded.files if f.table == "services")
    for rej in loaded.rejected:
        report.reject(rej)
    for rep in loaded.repaired:
        report.repair(rep)
    started = time.perf_counter()
    seen: set[tuple[str, str]] = set()
    batch: list[Pending] = []
    bar = tqdm(
        total=len(loaded.services),
        unit="svc",
        file=sys.stderr,
        disable=not progress or not sys.stderr.isatty(),
    )
    limit = POSTGRES_IN_FLIGHT if server.db.postgres else 1
    in_flight: set[asyncio.Task[None]] = set()

    async def submit(items: list[Pending]) -> None:
        while len(in_flight) >= limit:
            done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                in_flight.discard(task)
                task.result()
        in_flight.add(asyncio.create_task(_write(server, items, report)))

    for service in loaded.services:
        mapped = map_service(source, service, default_tz)
        for rej in mapped.rejected:
            report.reject(rej)
        for rep in mapped.repaired:
            report.repair(rep)
        for item in mapped.resources:
            key = (item[0], item[1]["id"])
            if key in seen:  # an organization or location shared by several services
                continue
            seen.add(key)
            batch.append(item)
        if mapped.resources and mapped.resources[-1][0] == "HealthcareService":
            report.services += 1
            if mapped.resources[-1][1].get("location"):
                report.services_with_location += 1
            skip = {(r.file, r.row) for r in mapped.rejected}
            for file, row in rows_used(service, skip):
                report.use(file, row)
        bar.update(1)
        if len(batch) >= BATCH:
            await submit(batch)
            batch = []
    if batch:
        await submit(batch)
    if in_flight:
        await asyncio.gather(*in_flight)
    bar.close()
    report.seconds = time.perf_counter() - started
    report.duplicates = await find_duplicates(server)
    return report
