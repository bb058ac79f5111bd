"""The patient-voice figures (already suppressed) as a FHIR Parameters resource or CSV.

Parameters: ``questionnaire`` (its canonical), ``minCell``, then one ``organization`` per CBO
whose parts are ``organization`` (the reference), ``responses`` and one ``answer`` per question
and answer (``item``, ``value`` as valueBoolean or valueCoding, ``count``). A hidden count is
``suppressed`` valueBoolean true instead of ``count``, never zero. CSV: one row per figure,
``organization,item,answer,count``; a hidden count is an empty cell."""

from __future__ import annotations

import csv
import io
from typing import Any

from referral_api.measures.report import label
from referral_api.measures.table import spreadsheet_safe
from referral_api.voice.aggregate import OrgFigures
from referral_api.voice.questionnaire import ANSWERS, CANONICAL, ITEMS, VERSION


def _count(n: int | None) -> dict[str, Any]:
    if n is None:
        return {"name": "suppressed", "valueBoolean": True}
    return {"name": "count", "valueInteger": n}


def _value(link_id: str, answer: str) -> dict[str, Any]:
    if ITEMS[link_id][0] == "boolean":
        return {"name": "value", "valueBoolean": answer == "true"}
    return {"name": "value", "valueCoding": {"system": ANSWERS, "code": answer}}


def _sorted(figures: dict[str | None, OrgFigures]) -> list[tuple[str | None, OrgFigures]]:
    return sorted(figures.items(), key=lambda kv: label(kv[0]))


def parameters(figures: dict[str | None, OrgFigures], min_cell: int) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": "questionnaire", "valueCanonical": f"{CANONICAL}|{VERSION}"},
        {"name": "minCell", "valueInteger": min_cell},
    ]
    for org, f in _sorted(figures):
        parts: list[dict[str, Any]] = [
            {"name": "organization", "valueReference": {"reference": org}}
            if org
            else {"name": "organization", "valueString": label(org)},
            {"name": "responses", "part": [_count(f.responses)]},
        ]
        for link_id, cells in f.answers.items():
            for answer, n in cells.items():
                parts.append(
                    {
                        "name": "answer",
                        "part": [
                            {"name": "item", "valueString": link_id},
                            _value(link_id, answer),
                            _count(n),
                        ],
                    }
                )
        params.append({"name": "organization", "part": parts})
    return {"resourceType": "Parameters", "parameter": params}


def to_csv(figures: dict[str | None, OrgFigures]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["organization", "item", "answer", "count"])
    for org, f in _sorted(figures):
        name = spreadsheet_safe(label(org))
        writer.writerow([name, "responses", "", "" if f.responses is None else f.responses])
        for link_id, cells in f.answers.items():
            for answer, n in cells.items():
                writer.writerow([name, link_id, answer, "" if n is None else n])
    return out.getvalue()
