"""Small-cell suppression: a count from 1 to ``min_cell - 1`` is hidden (0 reveals no one), and
so is every figure derived from a small group: the closure rate when the cohort or its
completions are hidden, and a time when fewer than ``min_cell`` referrals were measured."""

from __future__ import annotations

from referral_api.measures.compute import DURATIONS, Cell, Figures

SAMPLE = {"first-response": "responded", "accept": "accepted", "complete": "completed"}
assert set(SAMPLE) == set(DURATIONS)


def hidden(count: int | None, min_cell: int) -> bool:
    return count is None or 0 < count < min_cell


def suppress_cell(cell: Cell, min_cell: int) -> Cell:
    raw = cell.counts
    counts = {k: (None if hidden(v, min_cell) else v) for k, v in raw.items()}
    small = hidden(raw["sent"], min_cell) or (raw["sent"] or 0) == 0
    rate = None if small or hidden(raw["completed"], min_cell) else cell.rate
    times = {
        key: (None if small or (raw[SAMPLE[key.split(".")[0]]] or 0) < min_cell else value)
        for key, value in cell.times.items()
    }
    return Cell(counts, rate, times)


def suppress(figures: Figures, min_cell: int) -> Figures:
    return Figures(
        suppress_cell(figures.total, min_cell),
        {
            name: {key: suppress_cell(cell, min_cell) for key, cell in cells.items()}
            for name, cells in figures.strata.items()
        },
    )
