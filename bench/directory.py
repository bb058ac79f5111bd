"""Import and geo-search figures of directory-api on PostgreSQL at metro-directory scale: how fast
the HSDS importer loads a directory, and what "food services within 10 km of here" costs.

Generates a synthetic HSDS directory over the Chicago metro area
(scripts/generate_demo_directory.py --area metro: N services, each with its own Location and
Organization), imports it through the real CLI (``directory-api import-hsds``, a subprocess),
VACUUM ANALYZEs, then drives directory-api (one uvicorn process) with wrk on

    GET /fhir/HealthcareService?location.near=LAT|LON|10|km
        &service-category=food-insecurity&_count=20

around a different point per request (the metro ZIP centroids, taken in turn), at 2 and at 16
connections. Needs wrk (`apt-get install wrk`).

    uv run python bench/directory.py [--count 100000] [--seconds 15] [--explain]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from asyncio.subprocess import PIPE
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx
from closedloop.testing import load_script

sys.path.insert(0, str(Path(__file__).parent))
from _harness import explain_search, postgres_url, running_service, wrk_available, wrk_load

ROOT = Path(__file__).resolve().parents[1]
GENERATOR = ROOT / "scripts" / "generate_demo_directory.py"
P95_GOAL_MS = 50.0
CATEGORY = "food-insecurity"
RADIUS_KM = 10
PAGE = 20
LOOP = (41.8781, -87.6298)  # the point the one-off check searches around: downtown Chicago


def search_query(lat: float, lon: float) -> str:
    """The query string, '|' percent-encoded (wrk sends the path as given)."""
    return urlencode(
        [
            ("location.near", f"{lat}|{lon}|{RADIUS_KM}|km"),
            ("service-category", CATEGORY),
            ("_count", str(PAGE)),
        ]
    )


async def migrate(db_url: str) -> None:
    """Create directory-api's tables the way the service does at start-up."""
    from directory_api.app import create_app
    from directory_api.settings import Settings

    app = create_app(Settings(database_url=db_url))
    async with app.router.lifespan_context(app):
        pass


async def autovacuum_on(db_url: str) -> bool:
    conn = await asyncpg.connect(db_url)
    try:
        return bool(await conn.fetchval("SHOW autovacuum") == "on")
    finally:
        await conn.close()


async def analyze_every(db_url: str, seconds: float) -> None:
    """What autoanalyze does on a server that runs it (naptime 1 min): fresh statistics as the
    tables grow, which also makes every session re-plan its cached statements. Without it the
    import slows down as the tables grow (measured on a 100,000 import: ~117 services/s early,
    ~10/s past 45,000, the importer's sessions waiting on buffer reads in the SELECT ... FOR
    UPDATE by id, though a fresh plan of it uses the unique index: probably the plans its
    sessions cached while the tables were small); one ANALYZE brought it back to ~116/s."""
    conn = await asyncpg.connect(db_url)
    try:
        while True:
            await asyncio.sleep(seconds)
            await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def import_directory(
    db_url: str, path: Path, report_path: Path, analyze_seconds: float | None
) -> tuple[dict[str, Any], float]:
    """``directory-api import-hsds`` as a user runs it; returns its JSON report and the wall
    time of the whole command (process start, reading the file, duplicate check included)."""
    env = {**os.environ, "DIRECTORY_API_DATABASE_URL": db_url}
    cmd = ["-m", "directory_api.cli", "import-hsds", str(path)]
    cmd += ["--source", "bench", "--no-progress", "--report", str(report_path)]
    analyzer = (
        asyncio.create_task(analyze_every(db_url, analyze_seconds)) if analyze_seconds else None
    )
    t0 = time.perf_counter()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *cmd, env=env, stdout=PIPE, stderr=PIPE
        )
        out, err = await proc.communicate()
    finally:
        if analyzer:
            analyzer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await analyzer
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"import-hsds failed ({proc.returncode}):\n{out.decode()}\n{err.decode()}")
    return json.loads(report_path.read_text()), wall


async def vacuum_analyze(db_url: str) -> None:
    """The steady state autovacuum leaves after a bulk load (it may be off, or start in the
    middle of a measurement)."""
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute("VACUUM (ANALYZE)")
    finally:
        await conn.close()


async def check(client: httpx.AsyncClient, base: str) -> str:
    """One search before the load, so a figure never comes from an empty or short answer."""
    url = f"{base}/fhir/HealthcareService?{search_query(*LOOP)}"
    t0 = time.perf_counter()
    r = await client.get(url)
    ms = (time.perf_counter() - t0) * 1000
    r.raise_for_status()
    entries = r.json().get("entry", [])
    assert len(entries) == PAGE, f"{url} returned {len(entries)} entries, not {PAGE}"
    assert all(e["resource"]["resourceType"] == "HealthcareService" for e in entries)
    total = (await client.get(url + "&_summary=count")).json().get("total")
    return f"{len(entries)} entries ({ms:.0f} ms, first fetch), {total} matching in all"


async def explain(db_url: str, query: str) -> None:
    from directory_api.app import create_app
    from directory_api.settings import Settings

    app = create_app(Settings(database_url=db_url))
    async with app.router.lifespan_context(app):
        await explain_search(app.state.fhir, "HealthcareService", query, "http://bench/fhir")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100_000, help="HealthcareServices")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seconds", type=int, default=15, help="per wrk run")
    parser.add_argument("--explain", action="store_true", help="print the search's plans")
    parser.add_argument(
        "--analyze-every",
        type=float,
        default=30.0,
        help="seconds between ANALYZEs during the import when autovacuum is off (0: none)",
    )
    args = parser.parse_args()
    if not wrk_available():
        sys.exit("bench/directory.py needs wrk (apt-get install wrk)")
    started = time.perf_counter()
    print(
        f"directory-api (one uvicorn process) on PostgreSQL, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f} before start (other work skews the figures); "
        f"{args.count} HealthcareServices over the Chicago metro area"
    )
    gen = load_script(GENERATOR)
    points = [(lat, lon) for _zip, lat, lon, _city, _r in gen.metro_zips()]
    paths = [f"/fhir/HealthcareService?{search_query(lat, lon)}" for lat, lon in points]
    figures: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-directory-") as tmp:
        data = Path(tmp, "directory.json")
        t0 = time.perf_counter()
        gen.main(
            [
                *("--seed", str(args.seed), "--count", str(args.count)),
                *("--area", "metro", "--output", str(data)),
            ]
        )
        print(f"\nGenerated in {time.perf_counter() - t0:.0f} s")
        async with postgres_url() as db:
            await migrate(db)
            analyze = None if await autovacuum_on(db) else args.analyze_every
            print(
                "Importing (directory-api import-hsds, one process)"
                + (
                    f"; autovacuum is off on this server, so the bench runs ANALYZE every "
                    f"{analyze:.0f} s during the import, as autoanalyze would"
                    if analyze
                    else ""
                )
            )
            report, wall = await import_directory(db, data, Path(tmp, "report.json"), analyze)
            for rtype, row in sorted(report["counts"].items()):
                print(f"  {rtype:<20} {row}")
            if report["rejected"]:
                print(f"  {len(report['rejected'])} rejected, first: {report['rejected'][0]}")
            print(
                f"  import {report['services_per_second']:.0f} services/s "
                f"({report['services']} services in {report['seconds']:.1f} s writing; "
                f"{wall:.1f} s for the whole command, reading the file and duplicate check "
                f"included: {report['services'] / wall:.0f} services/s)"
            )
            t0 = time.perf_counter()
            await vacuum_analyze(db)
            print(f"  VACUUM ANALYZE {time.perf_counter() - t0:.0f} s")
            async with running_service("directory_api", "DIRECTORY_API_", db) as base:
                async with httpx.AsyncClient(timeout=30) as client:
                    print(f"\nCheck near the Loop {LOOP}: {await check(client, base)}")
                print(
                    f"\nLoad ({args.seconds} s each, wrk; {len(points)} points, the metro ZIP "
                    f"centroids, in turn)\n  GET /fhir/HealthcareService?location.near=LAT|LON|"
                    f"{RADIUS_KM}|km&service-category={CATEGORY}&_count={PAGE}"
                )
                for connections in (2, 16):
                    name = f"near {RADIUS_KM} km + category, {connections} conn."
                    figures[name] = wrk_load(
                        name,
                        base,
                        paths=paths,
                        seconds=args.seconds,
                        connections=connections,
                    )
            if args.explain:
                await explain(db, search_query(*LOOP))
    print(f"\nSummary ({args.count} services, import {report['services_per_second']:.0f} /s)")
    print(f"{'':<36} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'errors':>7}")
    for name, f in figures.items():
        verdict = "ok" if f["p95_ms"] < P95_GOAL_MS else "ABOVE GOAL"
        print(
            f"{name:<36} {f['rps']:7.0f} {f['p50_ms']:7.1f} {f['p95_ms']:7.1f} "
            f"{f['p99_ms']:7.1f} {f['errors']:7.0f}   p95 < {P95_GOAL_MS:.0f} ms: {verdict}"
        )
    if any(f["errors"] for f in figures.values()):
        print("(errors: wrk counts a request as a timeout error after 2 s; a non-2xx also counts)")
    print(f"\nTotal time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    asyncio.run(main())
