"""The periods the loop metrics page offers: the last twelve months and the last three years
(``2026-12``, ``2026``), as the first and last day ``$evaluate-measure`` takes."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date

MONTH_NAMES = {
    "en": [calendar.month_name[m] for m in range(1, 13)],
    "es": [
        "enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
        "septiembre", "octubre", "noviembre", "diciembre",
    ],
}  # fmt: skip
MONTHS, YEARS = 12, 3
KEY = re.compile(r"^(\d{4})(?:-(\d{2}))?$")


@dataclass(frozen=True)
class Period:
    key: str  # 2026-12 or 2026
    start: date
    end: date  # inclusive

    @property
    def is_year(self) -> bool:
        return len(self.key) == 4


def label(key: str, lang: str) -> str:
    match = KEY.match(key)
    if not match or not match.group(2):
        return key
    names = MONTH_NAMES.get(lang, MONTH_NAMES["en"])
    month = names[int(match.group(2)) - 1]
    return f"{month} {match.group(1)}" if lang == "en" else f"{month} de {match.group(1)}"


def months(today: date) -> list[str]:
    out, year, month = [], today.year, today.month
    for _ in range(MONTHS):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out


def years(today: date) -> list[str]:
    return [str(today.year - n) for n in range(YEARS)]


def chosen(key: str | None, today: date) -> Period:
    """The period asked for when it is one offered, else this month."""
    if key not in months(today) and key not in years(today):
        key = months(today)[0]
    assert key is not None
    match = KEY.match(key)
    assert match is not None
    year = int(match.group(1))
    if match.group(2):
        month = int(match.group(2))
        last = calendar.monthrange(year, month)[1]
        return Period(key, date(year, month, 1), date(year, month, last))
    return Period(key, date(year, 1, 1), date(year, 12, 31))
