"""US ZIP code -> centroid, from the ``zipcodes`` package (it ships the data; nothing is
downloaded at run time). Used by the ``*-postalcode`` parameters
(``near-postalcode=ZIP|distance|unit`` and its ``contains``/``place`` siblings) and by the HSDS
importer, which places a location without coordinates at its ZIP's centroid.

Data and licence (zipcodes 3.0.0): about 42,800 ZIPs, every one with a centroid (all 30,006
``STANDARD`` delivery ZIPs included). The package code is MIT; its coordinates come from
GeoNames (CC BY 4.0: attribution required, *not* public domain), its ZIP list from
unitedstateszipcodes.org and the USPS ZIP Locale Detail (public domain)."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import zipcodes
from closedloop import errors


@lru_cache(maxsize=4096)
def centroid(zip_code: str) -> tuple[float, float] | None:
    try:
        found = zipcodes.matching(zip_code)
    except (ValueError, TypeError):
        return None
    for entry in found:
        if entry.get("lat") and entry.get("long"):
            return float(entry["lat"]), float(entry["long"])
    return None


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
