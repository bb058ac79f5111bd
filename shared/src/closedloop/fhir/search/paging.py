"""Keyset paging cursors: a page starts after the last row the client saw, not at an OFFSET,
so rows inserted or deleted meanwhile never shift a page (nothing skipped, nothing repeated).

A cursor comes back from the client, so nothing in it is trusted: it names the search it was
made for (a fingerprint of its criteria and sort), and each of its values must have the type
and range of the sort key it stands for before it is bound into SQL. A forged, truncated or
borrowed cursor is a 400, never a database error.
"""

from __future__ import annotations

import base64
import hashlib
import math
from dataclasses import dataclass
from typing import Any

import orjson

from closedloop import errors
from closedloop.fhir.search.limits import INT64_MAX, shown
from closedloop.fhir.search.query import RESULT_PARAMS

# Result parameters that change neither which rows match nor their order: a cursor stays
# valid when a client changes them between pages.
_NOT_ORDERING = RESULT_PARAMS - {"_sort"} | {"_include:iterate", "_revinclude:iterate"}
_NOT_ORDERING |= {"_include:recurse", "_revinclude:recurse"}


@dataclass(frozen=True)
class Cursor:
    direction: str  # "next": rows after ``key``; "prev": rows before ``key``
    key: tuple[Any, ...]  # the sort values of the boundary row, ending with its pk
    search: str = ""  # ``fingerprint`` of the search it belongs to


def fingerprint(resource_type: str, pairs: list[tuple[str, str]]) -> str:
    """What a cursor belongs to: the resource type, criteria and sort (in any order)."""
    kept = sorted({(k, v) for k, v in pairs if k not in _NOT_ORDERING})
    digest = hashlib.blake2b(orjson.dumps([resource_type, kept]), digest_size=6).digest()
    return base64.urlsafe_b64encode(digest).decode()


def encode(cursor: Cursor) -> str:
    raw = orjson.dumps({"d": cursor.direction, "k": list(cursor.key), "s": cursor.search})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _invalid(text: str) -> errors.FhirError:
    return errors.invalid(text, cl_code="CL-3420")


def decode(text: str) -> Cursor:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        data = orjson.loads(raw)
        direction, key, search = data["d"], data["k"], data.get("s", "")
        if direction not in ("next", "prev") or type(key) is not list or not key:
            raise ValueError
        if type(search) is not str:
            raise ValueError
    except (ValueError, KeyError, TypeError, AttributeError, orjson.JSONDecodeError):
        raise _invalid(f"Invalid paging cursor {shown(text)}") from None
    return Cursor(direction, tuple(key), search)


def _fits(value: Any, expected: type | None) -> bool:
    """Can ``value`` stand for a sort key whose values are of ``expected`` (None: any)?"""
    kind = type(value)
    if kind is int:
        return expected in (int, float, None) and -INT64_MAX - 1 <= value <= INT64_MAX
    if kind is float:
        return expected in (float, None) and math.isfinite(value)
    if kind is str:
        return expected in (str, None)
    return False


def check(cursor: Cursor, search: str, key_types: list[type | None]) -> None:
    """A 400 unless the cursor was made for this search and its values fit its sort keys
    (``key_types``: the Python type of each key's values, None when the key does not say)."""
    if cursor.search != search:
        raise _invalid("The paging cursor belongs to another search: follow the links of this one")
    if len(cursor.key) != len(key_types):
        raise _invalid("The paging cursor does not fit this query")
    last = len(key_types) - 1
    for i, (value, expected) in enumerate(zip(cursor.key, key_types, strict=True)):
        if value is None and i < last:
            continue  # a row without a value for a sort parameter
        if not _fits(value, expected):
            raise _invalid("The paging cursor does not fit this query")
