"""Time to compute the loop metrics' monthly report for 1,000,000 referral Tasks on PostgreSQL.

The Tasks' facts are bulk-loaded with COPY straight into the projection (``referral_facts``,
what the live hook and ``measures-backfill`` maintain), not written through the API: a million
referrals through HTTP would take hours and time the writes, not the report. Then the report a
CBO's or an admin's dashboard asks for is computed the way ``$evaluate-measure`` does (the
figures by every stratifier, percentiles in SQL, suppression, the MeasureReport and the CSV),
for one month and for the whole year.

    uv run python bench/measures.py [--tasks 1000000] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from closedloop.db import create_database, upgrade_to_head
from closedloop.fhir.instant import format_instant, now_us, to_us
from referral_api.app import MIGRATIONS
from referral_api.measures.compute import Query, Scope, compute
from referral_api.measures.report import measure_report
from referral_api.measures.suppress import suppress
from referral_api.measures.table import to_csv
from referral_api.measures.tables import referral_facts

sys.path.insert(0, str(Path(__file__).parent))
from _harness import postgres_url

HOUR = 3_600_000_000
YEAR_START = to_us(datetime(2025, 1, 1, tzinfo=UTC))
CATEGORIES = ["food-insecurity", "housing-instability", "transportation-insecurity",
              "financial-insecurity", "employment-status", "utility-insecurity"]  # fmt: skip


def rows(count: int, seed: int = 7):  # type: ignore[no-untyped-def]
    """``count`` referrals over 2025: 200 CBOs, 50 requesters, outcomes like the tests'."""
    rng = random.Random(seed)
    columns = [c.name for c in referral_facts.columns]
    for i in range(count):
        sent = YEAR_START + rng.randrange(365 * 24 * HOUR)
        row = dict.fromkeys(columns)
        row.update(
            task_id=f"t{i}",
            patient_id=f"p{i}",
            service_request_id=f"s{i}",
            owner_org=f"Organization/cbo-{rng.randrange(200)}",
            requester_org=f"Organization/req-{rng.randrange(50)}",
            category=rng.choice(CATEGORIES),
            language=rng.choice(["en", "es", "zh", "vi", None]),
            race=rng.choice(["2106-3", "2054-5", "2028-9", "1002-5", None]),
            ethnicity=rng.choice(["2135-2", "2186-5", None]),
            sex=rng.choice(["F", "M", None]),
            status="requested",
            sent_at=sent,
            sent_month=format_instant(sent)[:7],
        )
        roll = rng.random()
        if 0.15 <= roll < 0.25:
            row.update(status="rejected", declined_reason=rng.choice(["no-capacity", "other"]))
            row["declined_at"] = row["first_response_at"] = sent + rng.randrange(96 * HOUR)
        elif 0.25 <= roll < 0.33:
            row.update(status="cancelled", cancelled_at=sent + rng.randrange(48 * HOUR))
        elif roll >= 0.33:
            accepted = sent + rng.randrange(120 * HOUR)
            row.update(status="in-progress", accepted_at=accepted, first_response_at=accepted)
            if rng.random() < 0.6:
                row.update(status="completed", completed_at=accepted + rng.randrange(400 * HOUR))
        yield tuple(row[c] for c in columns)


async def load(url: str, count: int) -> float:
    began = time.perf_counter()
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        columns = [c.name for c in referral_facts.columns]
        await conn.copy_records_to_table("referral_facts", records=rows(count), columns=columns)
        await conn.execute("ANALYZE referral_facts")
    finally:
        await conn.close()
    return time.perf_counter() - began


async def timed(db, query: Query, runs: int) -> list[float]:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        async with db.read() as conn:
            figures = suppress(await compute(conn, query), 11)
        measure_report(figures, "2025-06-01", "2025-06-30")
        to_csv(figures)
        times.append(time.perf_counter() - began)
    return times


async def main(count: int, runs: int) -> None:
    async with postgres_url() as url:
        db = create_database(url)
        try:
            await upgrade_to_head(db, MIGRATIONS)
            print(
                f"loaded {count:,} referral Tasks' facts by COPY in {await load(url, count):.1f} s"
            )
            june = (
                to_us(datetime(2025, 6, 1, tzinfo=UTC)),
                to_us(datetime(2025, 7, 1, tzinfo=UTC)),
            )
            year = (YEAR_START, to_us(datetime(2026, 1, 1, tzinfo=UTC)))
            stall = {"food-insecurity": 3}
            cases = [
                ("monthly report, admin (all CBOs)", june, Scope(), runs),
                ("monthly report, one CBO", june, Scope(owner="Organization/cbo-7"), runs),
                ("yearly report by month, admin", year, Scope(), min(runs, 2)),
            ]
            for name, (start, end), scope, n in cases:
                query = Query(start, end, now_us(), 7, stall, scope)
                times = await timed(db, query, n)
                print(
                    f"{name}: median {statistics.median(times):.3f} s, "
                    f"best {min(times):.3f} s over {n} runs"
                )
        finally:
            await db.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.tasks, args.runs))
