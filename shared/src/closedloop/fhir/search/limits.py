"""What one search may ask of the database: how many parameters and values, how long it may run,
and the whole numbers a query may carry.

A search repeating a parameter a few hundred times costs PostgreSQL seconds of planning per
request (each parameter is one more relation to join), and a value list of a thousand entries
builds an expression SQLite refuses. Both are refused before any SQL is built, with a 400 that
names the limit. A search that still runs longer than its time limit is cancelled on the
database (see ``SearchEngine.search``) and answered with a 503 ``too-costly`` outcome.
"""

from __future__ import annotations

from closedloop import errors

INT64_MAX = 2**63 - 1
"""The largest integer either database stores (BIGINT; SQLite's INTEGER)."""

DEFAULT_MAX_VALUES = 400
DEFAULT_MAX_PARAMETERS = 64
DEFAULT_TIMEOUT_MS = 10_000

_SHOWN = 40  # characters of a refused value quoted back in a diagnostic


def shown(text: str) -> str:
    """A value quoted in a diagnostic, cut short: an error never echoes a megabyte back."""
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")


def whole_number(
    name: str, text: str, *, cl_code: str = "CL-3400", maximum: int = INT64_MAX
) -> int:
    """``text`` as a non-negative integer the database can hold, else a 400 naming ``name``.

    Only ASCII digits count (``str.isdigit`` also admits ``²``, which ``int`` refuses), and the
    length is checked before ``int`` runs, so a 5 MB run of digits costs nothing.
    """
    if not (text.isascii() and text.isdigit()):
        raise errors.invalid(
            f"{name} must be a whole number (0 or more), not {shown(text)}", cl_code=cl_code
        )
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(maximum)) or int(digits) > maximum:
        raise errors.invalid(
            f"{name} must be at most {maximum}, not {shown(text)}", cl_code=cl_code
        )
    return int(digits)


MAX_VERSION = 2**31 - 1
"""The largest version id stored (resources.version_id is an INTEGER)."""


def version_number(text: str) -> int:
    """A vread's version id; one the database cannot hold is simply not known (404)."""
    try:
        return whole_number("version", text, maximum=MAX_VERSION)
    except errors.FhirError:
        raise errors.not_found(f"Version {shown(text)} is not known", cl_code="CL-1405") from None


def too_costly(text: str, status: int, cl_code: str) -> errors.FhirError:
    return errors.FhirError(status, [errors.Issue("error", "too-costly", text, (), cl_code)])


def timed_out(timeout_ms: int) -> errors.FhirError:
    return too_costly(
        f"The search ran longer than the server's {timeout_ms} ms limit and was stopped; "
        "narrow it (fewer values, more selective parameters) and try again",
        503,
        "CL-3462",
    )
