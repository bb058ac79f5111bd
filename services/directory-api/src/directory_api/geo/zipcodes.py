"""US ZIP code -> centroid, from the public-domain table shipped beside this module (nothing is
downloaded at run time). Used by the ``*-postalcode`` parameters
(``near-postalcode=ZIP|distance|unit`` and its ``contains``/``place`` siblings) and by the HSDS
importer, which places a location without coordinates at its ZIP's centroid.

The table (``data/zcta_centroids.csv``, see ``data/README.md``) is the US Census Bureau's 2020
Gazetteer of ZIP Code Tabulation Areas: 33,791 ZCTAs, each with the Census internal point of the
area. A ZCTA is the Census's areal approximation of a delivery ZIP, so a ZIP that has no area of
its own (a PO-box-only or single-building ZIP) is not in it and is refused as unknown rather than
guessed."""

from __future__ import annotations

import csv
from collections.abc import Callable
from functools import cache
from importlib import resources

from closedloop import errors

TABLE = "zcta_centroids.csv"


@cache
def _table() -> dict[str, tuple[float, float]]:
    """The whole table, read once (about 34,000 rows, a few MB in memory)."""
    text = resources.files(__package__).joinpath("data", TABLE).read_text(encoding="utf-8")
    rows = csv.reader(text.splitlines()[1:])
    return {code: (float(lat), float(lon)) for code, lat, lon in rows}


def centroid(zip_code: str) -> tuple[float, float] | None:
    """The centroid of a five-digit ZIP, or None when the Census has no area for it."""
    return _table().get(zip_code)


def _point(code: str, zip_text: str) -> tuple[float, float]:
    zip_code = zip_text.strip()
    zip_code = zip_code[:5] if len(zip_code) == 10 and zip_code[5] == "-" else zip_code
    point = centroid(zip_code) if zip_code.isdigit() and len(zip_code) == 5 else None
    if point is None:
        raise errors.invalid(f"{code}: {zip_text!r} is not a known US ZIP code", cl_code="CL-9400")
    return point


def postalcode_resolver(code: str) -> Callable[[str], str]:
    """The value resolver of ``code``: ``ZIP[|rest]`` -> ``latitude|longitude[|rest]``, the form
    of the geo parameter it stands for (``60614|10|mi`` -> ``41.9229|-87.6483|10|mi`` for
    ``near``; ``60614`` -> ``41.9229|-87.6483`` for ``contains``)."""

    def resolve(value: str) -> str:
        zip_code, _, rest = value.partition("|")
        lat, lon = _point(code, zip_code)
        return f"{lat}|{lon}" + (f"|{rest}" if rest else "")

    return resolve


POSTALCODE_PARAMS = ("near-postalcode", "contains-postalcode", "place-postalcode")
RESOLVERS = {code: postalcode_resolver(code) for code in POSTALCODE_PARAMS}
