"""An in-memory FHIR R4 search evaluator: the reference the property tests compare with.

It knows only the few parameters the properties generate (Patient: gender, identifier, family,
given, name, birthdate; Task: status, owner, authored-on; both: _id, _tag) and implements them
straight from the specification (http://hl7.org/fhir/R4/search.html), deliberately sharing no
code with the engine (its own parser, its own date ranges, its own string normalisation):

- token: ``code`` matches the code in any system, ``system|code`` both, ``|code`` a code
  without system, ``system|`` any code in the system; exact and case-sensitive. ``:not`` is the
  complement of the (ORed) match and includes resources without any value.
- string: case- and accent-insensitive starts-with on the value; ``:contains`` anywhere;
  ``:exact`` the whole string, case and accents included. ``name`` looks at every part of a
  HumanName (family, given, prefix, suffix, text).
- date: every value is the half-open range ``[start, end)`` its precision implies (a
  dateTime without offset, and a date, are UTC); prefixes per the table in #prefix
  (see ``date_matches``). No prefix means ``eq``.
- reference: relative ``Type/id``, a bare ``id`` (any target type) and an absolute URL all
  resolve to an absolute URL against the server base; local references match when the URLs
  agree. A foreign absolute reference matches only its own URL.
- ``:missing=true`` — no value; ``:missing=false`` — at least one value.
- Values of one parameter are ORed, repeated parameters ANDed; the order is creation order.
- Escaping (#escaping): in a value, ``\\`` escapes ``,`` ``|`` ``$`` and itself; the value
  separators (``,`` between ORed values, ``|`` between a token's system and code) are the
  unescaped ones, and the match uses the unescaped text.

``evaluate(..., quirks=...)`` can switch on a named, known disagreement of the engine with the
spec (see ``QUIRKS``), so a property test can keep covering everything else while the
disagreement is pinned by its own (strict xfail) test.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

BASE = "http://testserver/fhir"
RESULT_PARAMS = frozenset(("_count", "_total", "_sort", "_cursor"))

QUIRKS = {
    # Deliberate: directory-api's listings are referenced by absolute URL, and clients search
    # them as Organization/<id> (the referral issue asks for both forms to work).
    "foreign-reference-by-id": "a foreign absolute reference (http://other/fhir/Type/id) is "
    "matched by a search for the local Type/id or the bare id, not only by its own URL",
}

# -- escaping -------------------------------------------------------------------------------


def split_escaped(text: str, sep: str, maxsplit: int = -1) -> list[str]:
    """``text`` split at each ``sep`` not escaped by a backslash; the parts keep their escapes."""
    parts: list[str] = []
    current, i = "", 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            current += text[i : i + 2]
            i += 2
            continue
        if text[i] == sep and (maxsplit < 0 or len(parts) < maxsplit):
            parts.append(current)
            current = ""
        else:
            current += text[i]
        i += 1
    return [*parts, current]


def unescape(text: str) -> str:
    return re.sub(r"\\([\\,|$])", r"\1", text)


def escape(text: str) -> str:
    """How a client writes a raw value into a search parameter."""
    return re.sub(r"([\\,|$])", r"\\\1", text)


def split_values(text: str, quirks: frozenset[str]) -> list[str]:
    """The ORed values of a parameter, still escaped."""
    return split_escaped(text, ",")


# -- dates ------------------------------------------------------------------------------------

_DATE = re.compile(
    r"(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<hh>\d{2}):(?P<mi>\d{2})(?::(?P<ss>\d{2})(?:\.(?P<f>\d{1,6}))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2}))?)?)?"
)

Range = tuple[datetime, datetime]  # [start, end)


def date_range(text: str) -> Range:
    """The half-open UTC range a FHIR date/dateTime/instant denotes (its precision)."""
    m = _DATE.fullmatch(text)
    if m is None:
        raise ValueError(f"not a date the oracle understands: {text!r}")
    y = int(m["y"])
    if m["m"] is None:
        return datetime(y, 1, 1, tzinfo=UTC), datetime(y + 1, 1, 1, tzinfo=UTC)
    mo = int(m["m"])
    if m["d"] is None:
        nxt = datetime(y + 1, 1, 1, tzinfo=UTC) if mo == 12 else datetime(y, mo + 1, 1, tzinfo=UTC)
        return datetime(y, mo, 1, tzinfo=UTC), nxt
    start = datetime(y, mo, int(m["d"]), tzinfo=UTC)
    if m["hh"] is None:
        return start, start + timedelta(days=1)
    start += timedelta(hours=int(m["hh"]), minutes=int(m["mi"]))
    if m["ss"] is None:
        span = timedelta(minutes=1)
    elif m["f"] is None:
        start += timedelta(seconds=int(m["ss"]))
        span = timedelta(seconds=1)
    else:
        digits = m["f"]
        start += timedelta(seconds=int(m["ss"]), microseconds=int(digits.ljust(6, "0")))
        span = timedelta(microseconds=10 ** (6 - len(digits)))
    tz = m["tz"]
    if tz != "Z":
        offset = timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))
        start = start - offset if tz[0] == "+" else start + offset
    return start, start + span


def date_matches(
    prefix: str, target: Range, search: Range, quirks: frozenset[str] = frozenset()
) -> bool:
    """The R4 prefix table, word for word, over half-open ranges:

    eq  the search range fully contains the target range
    ne  ... does not fully contain it
    gt  the range above the search value intersects the target
    lt  the range below the search value intersects the target
    ge  gt, or the search range fully contains the target
    le  lt, or the search range fully contains the target
    sa  no overlap, and the range above the search value contains the target
    eb  no overlap, and the range below the search value contains the target
    """
    (lo, hi), (s_lo, s_hi) = target, search
    contains = s_lo <= lo and hi <= s_hi
    above = hi > s_hi  # some instant of the target is at or after the search end
    below = lo < s_lo  # some instant of the target is before the search start
    return {
        "eq": contains,
        "ne": not contains,
        "gt": above,
        "lt": below,
        "ge": above or contains,
        "le": below or contains,
        "sa": lo >= s_hi,
        "eb": hi <= s_lo,
    }[prefix]


def split_prefix(value: str) -> tuple[str, str]:
    if value[:2] in ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb"):
        return value[:2], value[2:]
    return "eq", value


# -- strings ----------------------------------------------------------------------------------


def fold(text: str) -> str:
    """Case- and accent-insensitive form: decompose, drop the combining marks, lower-case."""
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn").lower()


def string_matches(modifier: str | None, stored: str, value: str) -> bool:
    """``value`` is unescaped."""
    if modifier == "exact":
        return stored == value
    if modifier == "contains":
        return fold(value) in fold(stored)
    return fold(stored).startswith(fold(value))


# -- tokens -----------------------------------------------------------------------------------

Token = tuple[str | None, str]  # (system, code)


def token_matches(stored: Token, value: str, quirks: frozenset[str] = frozenset()) -> bool:
    """``value`` is still escaped: ``code``, ``system|code``, ``|code`` or ``system|``."""
    system, code = stored
    parts = [unescape(p) for p in split_escaped(value, "|", 1)]
    if len(parts) == 1:
        return code == parts[0]
    want_system, want_code = parts
    if want_system == "":
        return system is None and code == want_code
    if want_code == "":
        return system == want_system
    return system == want_system and code == want_code


# -- references -------------------------------------------------------------------------------


def absolute(reference: str) -> str:
    return reference if "://" in reference else f"{BASE}/{reference}"


_TYPE_ID = re.compile(r"https?://.+/(?P<type>[A-Z][A-Za-z]+/[A-Za-z0-9.-]+)")


def reference_matches(
    stored: str,
    value: str,
    target_type: str | None,
    targets: tuple[str, ...],
    quirks: frozenset[str] = frozenset(),
) -> bool:
    urls = {absolute(stored)}
    foreign = _TYPE_ID.fullmatch(stored)
    local_search = "://" not in value or value.startswith(f"{BASE}/")
    if "foreign-reference-by-id" in quirks and foreign and local_search:
        urls.add(absolute(foreign["type"]))
    if "/" in value:  # Type/id or an absolute URL
        return absolute(value) in urls
    types = (target_type,) if target_type else targets
    return any(f"{BASE}/{t}/{value}" in urls for t in types)


# -- parameters -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    type: str
    values: Callable[[dict[str, Any]], list[Any]]
    targets: tuple[str, ...] = ()


def _names(r: dict[str, Any], *parts: str) -> list[str]:
    out: list[str] = []
    for name in r.get("name", []):
        for part in parts:
            value = name.get(part)
            out += value if isinstance(value, list) else [value] if value else []
    return out


def _tags(r: dict[str, Any]) -> list[Token]:
    return [(t.get("system"), t["code"]) for t in r.get("meta", {}).get("tag", [])]


def _opt(value: Any) -> list[Any]:
    return [] if value is None else [value]


PARAMS: dict[str, dict[str, Param]] = {
    "Patient": {
        "gender": Param("token", lambda r: [(None, g) for g in _opt(r.get("gender"))]),
        "identifier": Param(
            "token", lambda r: [(i.get("system"), i["value"]) for i in r.get("identifier", [])]
        ),
        "family": Param("string", lambda r: _names(r, "family")),
        "given": Param("string", lambda r: _names(r, "given")),
        "name": Param("string", lambda r: _names(r, "family", "given", "prefix", "suffix", "text")),
        "birthdate": Param("date", lambda r: [date_range(d) for d in _opt(r.get("birthDate"))]),
        "_tag": Param("token", _tags),
    },
    "Task": {
        "status": Param("token", lambda r: [(None, s) for s in _opt(r.get("status"))]),
        "owner": Param(
            "reference",
            lambda r: [o["reference"] for o in _opt(r.get("owner"))],
            targets=(
                "Practitioner",
                "Organization",
                "CareTeam",
                "HealthcareService",
                "Patient",
                "Device",
                "RelatedPerson",
                "PractitionerRole",
            ),
        ),
        "authored-on": Param("date", lambda r: [date_range(d) for d in _opt(r.get("authoredOn"))]),
        "_tag": Param("token", _tags),
    },
}


def _value_matches(
    param: Param, modifier: str | None, stored: Any, value: str, quirks: frozenset[str]
) -> bool:
    if param.type == "token":
        return token_matches(stored, value, quirks)
    value = unescape(value)
    if param.type == "string":
        return string_matches(modifier, stored, value)
    if param.type == "date":
        prefix, text = split_prefix(value)
        return date_matches(prefix, stored, date_range(text), quirks)
    if param.type == "reference":
        target = modifier if modifier and modifier[0].isupper() else None
        return reference_matches(stored, value, target, param.targets, quirks)
    raise AssertionError(param.type)


def criterion_matches(
    resource_type: str,
    resource: dict[str, Any],
    name: str,
    value: str,
    quirks: frozenset[str] = frozenset(),
) -> bool:
    code, _, modifier = name.partition(":")
    if code == "_id":
        hit = resource["id"] in [unescape(v) for v in split_values(value, quirks)]
        return not hit if modifier == "not" else hit
    param = PARAMS[resource_type][code]
    stored = param.values(resource)
    if modifier == "missing":
        return (not stored) if value == "true" else bool(stored)
    hit = any(
        _value_matches(param, modifier or None, s, v, quirks)
        for s in stored
        for v in split_values(value, quirks)
    )
    return not hit if modifier == "not" else hit


def evaluate(
    resource_type: str,
    resources: list[dict[str, Any]],
    pairs: list[tuple[str, str]],
    quirks: frozenset[str] = frozenset(),
) -> list[str]:
    """Ids of ``resources`` (in their order, the creation order) meeting every criterion,
    per the spec unless ``quirks`` (keys of ``QUIRKS``) say otherwise."""
    assert quirks <= QUIRKS.keys(), quirks
    criteria = [(n, v) for n, v in pairs if n not in RESULT_PARAMS]
    return [
        r["id"]
        for r in resources
        if all(criterion_matches(resource_type, r, n, v, quirks) for n, v in criteria)
    ]
