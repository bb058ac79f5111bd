"""Figures (already suppressed) as CSV rows: one row for the whole cohort and one per stratum,
every figure a column; a hidden figure is an empty cell, so spreadsheets read it as missing."""

from __future__ import annotations

import csv
import io

from referral_api.measures.compute import COUNTS, DURATIONS, STATS, Cell, Figures
from referral_api.measures.report import label

TIME_COLUMNS = [f"{d}.{s}" for d in DURATIONS for s in STATS]
HEADER = [
    "stratifier",
    "stratum",
    *COUNTS,
    "closure_rate",
    *(f"time_to_{c.replace('.', '_').replace('-', '_')}_hours" for c in TIME_COLUMNS),
]


def spreadsheet_safe(text: str) -> str:
    """A cell a spreadsheet will not run as a formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _row(stratifier: str, stratum: str, cell: Cell) -> list[str]:
    def num(value: float | int | None, scale: float = 1.0) -> str:
        return "" if value is None else f"{value / scale:.6g}"

    return [
        stratifier,
        spreadsheet_safe(stratum),
        *("" if cell.counts[c] is None else str(cell.counts[c]) for c in COUNTS),
        num(cell.rate),
        *(num(cell.times.get(c), 3600) for c in TIME_COLUMNS),
    ]


def to_csv(figures: Figures) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    writer.writerow(_row("all", "all", figures.total))
    for name, cells in figures.strata.items():
        for key, cell in sorted(cells.items(), key=lambda kv: label(kv[0])):
            writer.writerow(_row(name, label(key), cell))
    return out.getvalue()
