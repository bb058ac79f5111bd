"""Keyset paging cursors: a page starts after the last row the client saw, not at an OFFSET,
so rows inserted or deleted meanwhile never shift a page (nothing skipped, nothing repeated)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson

from closedloop import errors


@dataclass(frozen=True)
class Cursor:
    direction: str  # "next": rows after ``key``; "prev": rows before ``key``
    key: tuple[Any, ...]  # the sort values of the boundary row, ending with its pk


def encode(cursor: Cursor) -> str:
    raw = orjson.dumps({"d": cursor.direction, "k": list(cursor.key)})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(text: str) -> Cursor:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        data = orjson.loads(raw)
        direction, key = data["d"], tuple(data["k"])
        if direction not in ("next", "prev") or not key:
            raise ValueError
    except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise errors.invalid(f"Invalid paging cursor {text!r}", cl_code="CL-3420") from None
    return Cursor(direction, key)
