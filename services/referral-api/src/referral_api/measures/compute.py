"""The loop metrics, computed in SQL over ``referral_facts``: counts, closure rate and the
median and 90th percentile of the times to first response, to accept and to complete, overall
and by each stratifier.

The cohort is the referrals sent in the period (``sent_at`` in [start, end)); every figure is
about that cohort, so the counts add up. Entered-in-error Tasks are left out. A referral is
stalled when the CBO has not answered (accepted or declined) and it is not cancelled, more than
the stall limit (per category, else the default) after it was sent, as of ``now``.

Percentiles are PostgreSQL's ``percentile_cont`` (linear interpolation); SQLite has none, so
there the narrowed durations are fetched and interpolated the same way in Python.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, select, tuple_
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from referral_api.measures.tables import referral_facts

F = referral_facts.c
DAY_US = 86_400 * 1_000_000
COUNTS = ("sent", "accepted", "declined", "completed", "cancelled", "stalled", "responded")
DURATIONS = {  # name: (end column, start column)
    "first-response": (F.first_response_at, F.sent_at),
    "accept": (F.accepted_at, F.sent_at),
    "complete": (F.completed_at, F.sent_at),
}
STATS = {"median": 0.5, "p90": 0.9}
STRATIFIERS: dict[str, Any] = {
    "cbo": F.owner_org,
    "category": F.category,
    "requester": F.requester_org,
    "month": F.sent_month,
    "language": F.language,
    "race": F.race,
    "ethnicity": F.ethnicity,
    "sex": F.sex,
    "declined-reason": F.declined_reason,
}


@dataclass(frozen=True)
class Scope:
    """Whose referrals a caller may count: None for all, else the CBO (owner) or the requesting
    organization, as ``Organization/id``."""

    owner: str | None = None
    requester: str | None = None


@dataclass(frozen=True)
class Query:
    start_us: int
    end_us: int
    now_us: int
    stall_days: int = 7
    stall_days_by_category: Mapping[str, int] = field(default_factory=dict)
    scope: Scope = Scope()


@dataclass
class Cell:
    """The figures of the whole cohort or of one stratum. ``times`` are seconds, keyed
    ``"accept.median"`` etc.; None where nothing was measured (or, after suppression, hidden)."""

    counts: dict[str, int | None]
    rate: float | None
    times: dict[str, float | None]


@dataclass
class Figures:
    total: Cell
    strata: dict[str, dict[str | None, Cell]]


def percentile(values: list[int], q: float) -> float | None:
    """``percentile_cont``: linear interpolation between the closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _where(q: Query) -> ColumnElement[bool]:
    parts = [F.sent_at >= q.start_us, F.sent_at < q.end_us, F.status != "entered-in-error"]
    if q.scope.owner is not None:
        parts.append(F.owner_org == q.scope.owner)
    if q.scope.requester is not None:
        parts.append(F.requester_org == q.scope.requester)
    return and_(*parts)


def stall_limit(stall_days: int, by_category: Mapping[str, int]) -> Any:
    """The stall limit of each ``referral_facts`` row in microseconds, by its category: shared
    with the follow-up sweep, so the figures and the worklist agree on what is stalled."""
    default = literal(stall_days * DAY_US)
    if not by_category:
        return default
    whens = [(F.category == c, literal(d * DAY_US)) for c, d in by_category.items()]
    return case(*whens, else_=default)


def _counts(q: Query) -> list[Any]:
    stalled = and_(
        F.first_response_at.is_(None),
        F.cancelled_at.is_(None),
        F.sent_at < literal(q.now_us) - stall_limit(q.stall_days, q.stall_days_by_category),
    )
    return [
        func.count().label("sent"),
        func.count(F.accepted_at).label("accepted"),
        func.count(F.declined_at).label("declined"),
        func.count(F.completed_at).label("completed"),
        func.count(F.cancelled_at).label("cancelled"),
        func.coalesce(func.sum(case((stalled, 1), else_=0)), 0).label("stalled"),
        func.count(F.first_response_at).label("responded"),
    ]


def _percentiles() -> list[Any]:
    """One sort per duration for both statistics (``percentile_cont`` of an array)."""
    fractions = postgresql.array([literal(p) for p in STATS.values()])
    return [
        func.percentile_cont(fractions).within_group(end - start).label(name)
        for name, (end, start) in DURATIONS.items()
    ]


def _cell(row: Mapping[Any, Any], times: Mapping[str, float | None]) -> Cell:
    counts: dict[str, int | None] = {c: int(row[c]) for c in COUNTS}
    sent, completed = counts["sent"] or 0, counts["completed"] or 0
    seconds = {k: (None if v is None else float(v) / 1_000_000) for k, v in times.items()}
    return Cell(counts, completed / sent if sent else None, seconds)


async def compute(conn: AsyncConnection, q: Query) -> Figures:
    """The figures for the cohort and each stratifier."""
    if conn.dialect.name == "postgresql":
        return await _compute_postgres(conn, q)
    return await _compute_portable(conn, q)


async def _compute_postgres(conn: AsyncConnection, q: Query) -> Figures:
    """One statement, one scan of the period's rows: GROUPING SETS of the cohort and each
    stratifier; ``grouping()`` says which set a row belongs to."""
    columns = list(STRATIFIERS.values())
    every = (1 << len(columns)) - 1  # grouping() of the empty set: no column grouped
    stmt = (
        select(
            *(c.label(n) for n, c in STRATIFIERS.items()),
            func.grouping(*columns).label("grouping_set"),
            *_counts(q),
            *_percentiles(),
        )
        .where(_where(q))
        .group_by(func.grouping_sets(tuple_(), *(tuple_(c) for c in columns)))
    )
    total = _cell(dict.fromkeys(COUNTS, 0), {})
    strata: dict[str, dict[str | None, Cell]] = {name: {} for name in STRATIFIERS}
    for row in (await conn.execute(stmt)).mappings():
        times = {
            f"{d}.{s}": (row[d][i] if row[d] is not None else None)
            for d in DURATIONS
            for i, s in enumerate(STATS)
        }
        cell = _cell(row, times)
        if row["grouping_set"] == every:
            total = cell
            continue
        for i, name in enumerate(STRATIFIERS):
            if row["grouping_set"] == every ^ (1 << (len(columns) - 1 - i)):
                strata[name][row[name]] = cell
    return Figures(total, strata)


async def _compute_portable(conn: AsyncConnection, q: Query) -> Figures:
    """SQLite: one query per grouping for the counts, percentiles in Python."""
    where = _where(q)
    python_times = await _python_times(conn, where)
    total = _cell(dict.fromkeys(COUNTS, 0), {})
    strata: dict[str, dict[str | None, Cell]] = {}
    for name, column in [(None, None), *STRATIFIERS.items()]:
        keys = [column.label("key")] if column is not None else []
        stmt = select(*keys, *_counts(q)).where(where)
        if column is not None:
            stmt = stmt.group_by(column)
        cells: dict[str | None, Cell] = {}
        for row in (await conn.execute(stmt)).mappings():
            key = row["key"] if column is not None else None
            cells[key] = _cell(row, python_times.get((name, key), {}))
        if name is None:
            total = cells.get(None, total)
        else:
            strata[name] = cells
    return Figures(total, strata)


async def _python_times(
    conn: AsyncConnection, where: ColumnElement[bool]
) -> dict[tuple[str | None, Any], dict[str, float | None]]:
    """SQLite: each grouping's percentiles from the narrowed rows' durations."""
    durations = [(end - start).label(name) for name, (end, start) in DURATIONS.items()]
    keys = [col.label(name) for name, col in STRATIFIERS.items()]
    rows = (await conn.execute(select(*keys, *durations).where(where))).mappings().all()
    samples: dict[tuple[str | None, Any], dict[str, list[int]]] = {}
    for row in rows:
        for grouping in [(None, None), *((n, row[n]) for n in STRATIFIERS)]:
            bucket = samples.setdefault(grouping, {d: [] for d in DURATIONS})
            for d in DURATIONS:
                if row[d] is not None:
                    bucket[d].append(int(row[d]))
    return {
        grouping: {
            f"{d}.{s}": percentile(values[d], p) for d in DURATIONS for s, p in STATS.items()
        }
        for grouping, values in samples.items()
    }
