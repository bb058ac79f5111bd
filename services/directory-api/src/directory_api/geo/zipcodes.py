"""US ZIP code -> centroid, from the ``zipcodes`` package (it ships the data; nothing is
downloaded at run time). Used by ``near-postalcode=ZIP|distance|unit``."""

from __future__ import annotations

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


def near_postalcode(value: str) -> str:
    """``60614|10|mi`` -> ``41.9229|-87.6483|10|mi`` (the ``near`` form)."""
    zip_code, _, rest = value.partition("|")
    lat, lon = _point("near-postalcode", zip_code)
    return f"{lat}|{lon}" + (f"|{rest}" if rest else "")


def place_postalcode(value: str) -> str:
    """``60614|10|mi`` -> ``41.9229|-87.6483|10|mi`` (the ``place`` form)."""
    zip_code, _, rest = value.partition("|")
    lat, lon = _point("place-postalcode", zip_code)
    return f"{lat}|{lon}" + (f"|{rest}" if rest else "")


def contains_postalcode(value: str) -> str:
    """``60614`` -> ``41.9229|-87.6483`` (the ``contains`` form)."""
    lat, lon = _point("contains-postalcode", value)
    return f"{lat}|{lon}"
