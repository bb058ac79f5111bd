"""What the page shows of referral-api's answers, read defensively (a missing or odd part is a
blank, never an error): the MeasureReport's main figures, overall and per CBO, and the
patient-voice aggregates' Parameters. ``None`` is a figure referral-api hid (a small cell:
``data-absent-reason`` ``masked`` in the report, ``suppressed`` in the Parameters)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

COUNTS = ("sent", "accepted", "declined", "completed")
TIMES = ("time-to-accept.median", "time-to-accept.p90")


@dataclass
class Row:
    """One line of figures: the whole period, or one CBO (``key`` its reference)."""

    key: str
    counts: dict[str, int | None] = field(default_factory=dict)
    rate: float | None = None
    hours: dict[str, float | None] = field(default_factory=dict)


def _code(concept: Any) -> str:
    if isinstance(concept, list):
        concept = concept[0] if concept else None
    if not isinstance(concept, dict):
        return ""
    for coding in concept.get("coding") or []:
        if isinstance(coding, dict) and coding.get("code"):
            return str(coding["code"])
    return str(concept.get("text") or "")


def _score(entry: dict[str, Any]) -> float | None:
    value = (entry.get("measureScore") or {}).get("value")
    return float(value) if isinstance(value, int | float) else None


def _counts(entry: dict[str, Any]) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for population in entry.get("population") or []:
        if isinstance(population, dict):
            count = population.get("count")
            out[_code(population.get("code"))] = count if isinstance(count, int) else None
    return out


def _strata(group: dict[str, Any], by: str) -> list[tuple[str, dict[str, Any]]]:
    for stratifier in group.get("stratifier") or []:
        if isinstance(stratifier, dict) and _code(stratifier.get("code")) == by:
            return [
                (str((s.get("value") or {}).get("text") or ""), s)
                for s in stratifier.get("stratum") or []
                if isinstance(s, dict)
            ]
    return []


def report_rows(report: dict[str, Any], by: str = "cbo") -> tuple[Row, list[Row]]:
    """The whole period's figures, and one row per stratum of ``by``."""
    groups = {_code(g.get("code")): g for g in report.get("group") or [] if isinstance(g, dict)}
    counts = groups.get("referrals") or {}
    total = Row("", _counts(counts), _score(counts))
    rows = {key: Row(key, _counts(s), _score(s)) for key, s in _strata(counts, by)}
    for name in TIMES:
        group = groups.get(name) or {}
        total.hours[name] = _score(group)
        for key, stratum in _strata(group, by):
            rows.setdefault(key, Row(key)).hours[name] = _score(stratum)
    return total, sorted(rows.values(), key=lambda r: r.key)


@dataclass
class Voice:
    """One CBO's patient-voice figures: responses, and {(linkId, answer code): count}."""

    organization: str
    responses: int | None = None
    answers: dict[tuple[str, str], int | None] = field(default_factory=dict)


def _count_of(parts: list[dict[str, Any]]) -> int | None:
    for part in parts:
        if part.get("name") == "count" and isinstance(part.get("valueInteger"), int):
            return int(part["valueInteger"])
    return None  # suppressed


def _answer_code(part: dict[str, Any]) -> str:
    if isinstance(part.get("valueBoolean"), bool):
        return "true" if part["valueBoolean"] else "false"
    return str((part.get("valueCoding") or {}).get("code") or "")


def voice_figures(parameters: dict[str, Any]) -> tuple[int | None, list[Voice]]:
    """``minCell`` and each organization's figures from ``$aggregate``'s Parameters."""
    min_cell = None
    out = []
    for param in parameters.get("parameter") or []:
        if not isinstance(param, dict):
            continue
        if param.get("name") == "minCell" and isinstance(param.get("valueInteger"), int):
            min_cell = int(param["valueInteger"])
        if param.get("name") != "organization" or not isinstance(param.get("part"), list):
            continue
        voice = Voice("")
        for part in param["part"]:
            if not isinstance(part, dict):
                continue
            name, inner = (
                part.get("name"),
                [p for p in part.get("part") or [] if isinstance(p, dict)],
            )
            if name == "organization":
                ref = (part.get("valueReference") or {}).get("reference")
                voice.organization = str(ref or part.get("valueString") or "")
            elif name == "responses":
                voice.responses = _count_of(inner)
            elif name == "answer":
                item = next(
                    (str(p.get("valueString")) for p in inner if p.get("name") == "item"), ""
                )
                value = next((p for p in inner if p.get("name") == "value"), {})
                voice.answers[(item, _answer_code(value))] = _count_of(inner)
        out.append(voice)
    return min_cell, out
