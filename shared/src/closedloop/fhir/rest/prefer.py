"""The ``Prefer`` header (RFC 7240) as FHIR uses it: ``return=`` and ``handling=``."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from closedloop import errors


@dataclass(frozen=True)
class Preferences:
    return_: str = "representation"  # minimal | representation | OperationOutcome
    strict: bool = False


def preferences(request: Request) -> Preferences:
    return parse_prefer(request.headers.get("prefer", ""))


def parse_prefer(header: str) -> Preferences:
    ret, strict = "representation", False
    if not header:
        return Preferences(ret, strict)
    for part in header.split(","):
        for token in part.split(";"):
            key, _, value = token.strip().partition("=")
            value = value.strip().strip('"')
            if key == "return" and value in ("minimal", "representation", "OperationOutcome"):
                ret = value
            elif key == "handling":
                strict = value == "strict"
    return Preferences(ret, strict)


def parse_etag(value: str | None) -> int | None:
    """``W/"3"`` -> 3; a malformed If-Match is a 400, not an ignored precondition."""
    if value is None:
        return None
    text = value.strip()
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if not (text.isascii() and text.isdigit()):  # isdigit alone admits "²", which int refuses
        raise errors.invalid(
            f'If-Match {value!r} is not a version ETag like W/"3"', cl_code="CL-1412"
        )
    return int(text)
