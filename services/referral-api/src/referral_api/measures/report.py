"""Figures (already suppressed) as a FHIR R4 MeasureReport of the published Measure: the counts
group with the closure rate as its score, one group per time statistic in hours, each with a
stratifier per dimension. A hidden count has no ``count`` and says why (data-absent-reason
``masked``)."""

from __future__ import annotations

from typing import Any

from closedloop.fhir.instant import format_instant, now_us

from referral_api.measures.compute import COUNTS, Cell, Figures
from referral_api.measures.definition import CANONICAL, code, time_groups

MASKED = {
    "url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
    "valueCode": "masked",
}
NOT_RECORDED = "not-recorded"


def label(key: str | None) -> str:
    return NOT_RECORDED if key is None else str(key)


def _score(value: float | None, unit: str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    score: dict[str, Any] = {"value": round(value, 6)}
    if unit:
        score.update({"unit": unit, "system": "http://unitsofmeasure.org", "code": unit})
    return score


def _populations(cell: Cell) -> list[dict[str, Any]]:
    out = []
    for name in COUNTS:
        count = cell.counts[name]
        entry: dict[str, Any] = {"code": code(name)}
        if count is None:
            entry["extension"] = [MASKED]
        else:
            entry["count"] = count
        out.append(entry)
    return out


def _masked_score(entry: dict[str, Any], value: float | None, unit: str | None) -> None:
    score = _score(value, unit)
    if score is None:
        entry["extension"] = [MASKED]
    else:
        entry["measureScore"] = score


def _group(figures: Figures, group: str | None) -> dict[str, Any]:
    """``group`` None: the counts group; else a time statistic like ``time-to-accept.median``."""

    def fill(entry: dict[str, Any], cell: Cell) -> dict[str, Any]:
        if group is None:
            entry["population"] = _populations(cell)
            _masked_score(entry, cell.rate, None)
        else:
            seconds = cell.times.get(group.removeprefix("time-to-"))
            _masked_score(entry, None if seconds is None else seconds / 3600, "h")
        return entry

    out = fill({"code": code(group or "referrals")}, figures.total)
    out["stratifier"] = [
        {
            "code": [code(name)],
            "stratum": [
                fill({"value": {"text": label(key)}}, cell)
                for key, cell in sorted(cells.items(), key=lambda kv: label(kv[0]))
            ],
        }
        for name, cells in figures.strata.items()
    ]
    return out


def measure_report(
    figures: Figures, start: str, end: str, reporter: str | None = None
) -> dict[str, Any]:
    report: dict[str, Any] = {
        "resourceType": "MeasureReport",
        "status": "complete",
        "type": "summary",
        "measure": CANONICAL,
        "date": format_instant(now_us()),
        "period": {"start": start, "end": end},
        "group": [_group(figures, None), *(_group(figures, g) for g in time_groups())],
    }
    if reporter:
        report["reporter"] = {"reference": reporter}
    return report
