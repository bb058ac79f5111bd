"""Parse a FHIR search query string into a ``SearchQuery``: parameters, modifiers, prefixes.

Parsing knows the parameter types (from the registry) but nothing of SQL. Unknown parameters are
collected as warnings (or refused under ``Prefer: handling=strict``); malformed values are always
a 400, in either mode: a search that silently ignores a bad date answers the wrong question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from closedloop import errors
from closedloop.errors import Issue
from closedloop.fhir.search.definitions import SearchParam

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
RESULT_PARAMS = {
    "_count",
    "_sort",
    "_include",
    "_revinclude",
    "_summary",
    "_elements",
    "_total",
    "_format",
    "_pretty",
    "_cursor",
    "_contained",
    "_containedType",
}
ID_PARAMS = {"_id", "_lastUpdated"}
MODIFIERS = {
    "token": {"not", "text", "missing", "of-type"},
    "string": {"exact", "contains", "missing"},
    "date": {"missing"},
    "number": {"missing"},
    "quantity": {"missing"},
    "reference": {"missing", "identifier"},
    "uri": {"missing", "below", "above"},
    "special": {"missing"},
}
_SPLIT_COMMA = re.compile(r"(?<!\\),")


@dataclass
class Criterion:
    """One parameter occurrence: its values are ORed; criteria are ANDed."""

    code: str
    param: SearchParam | None  # None for _id/_lastUpdated
    type: str
    modifier: str | None
    values: list[str]
    target_type: str | None = None  # for reference ``:Type`` modifiers


@dataclass
class SortKey:
    code: str
    descending: bool
    param: SearchParam | None


@dataclass
class SearchQuery:
    resource_type: str
    criteria: list[Criterion] = field(default_factory=list)
    count: int | None = None
    sort: list[SortKey] = field(default_factory=list)
    include: list[str] = field(default_factory=list)
    revinclude: list[str] = field(default_factory=list)
    summary: str | None = None
    elements: list[str] = field(default_factory=list)
    total: str | None = None
    cursor: str | None = None
    warnings: list[Issue] = field(default_factory=list)


def split_values(value: str) -> list[str]:
    """Split on commas that are not escaped, then unescape ``\\,`` ``\\|`` ``\\$`` ``\\\\``."""
    return [v.replace("\\,", ",") for v in _SPLIT_COMMA.split(value)]


def split_prefix(value: str) -> tuple[str, str]:
    if len(value) > 2 and value[:2] in PREFIXES and not value[2:3].isalpha():
        return value[:2], value[2:]
    return "eq", value


def parse_pairs(query_string: str) -> list[tuple[str, str]]:
    return parse_qsl(query_string, keep_blank_values=True)


def _bad(text: str, code: str = "CL-3400") -> errors.FhirError:
    return errors.invalid(text, cl_code=code)


def _positive_int(name: str, value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise _bad(f"{name} must be a whole number, not {value!r}") from None
    if n < 0:
        raise _bad(f"{name} must not be negative")
    return n


def parse_query(
    resource_type: str,
    pairs: list[tuple[str, str]],
    params: dict[str, SearchParam],
    *,
    strict: bool = False,
    max_count: int = 1000,
) -> SearchQuery:
    q = SearchQuery(resource_type)

    def unknown(text: str) -> None:
        if strict:
            raise _bad(text, "CL-3401")
        q.warnings.append(errors.warning(text, "not-supported", "CL-3401"))

    for name, value in pairs:
        if name in (
            "_include:iterate",
            "_revinclude:iterate",
            "_include:recurse",
            "_revinclude:recurse",
        ):
            name, value = name.split(":")[0], f"{value}:iterate"
        if name in RESULT_PARAMS:
            _result_param(q, name, value, params, max_count, unknown)
            continue
        code, _, modifier = name.partition(":")
        if code == "_id":
            q.criteria.append(Criterion(code, None, "token", modifier or None, split_values(value)))
            continue
        if code == "_lastUpdated":
            q.criteria.append(Criterion(code, None, "date", modifier or None, split_values(value)))
            continue
        param = params.get(code)
        if param is None:
            unknown(f"Unknown search parameter {code!r} for {resource_type}")
            continue
        target = None
        if modifier and param.type == "reference" and modifier[:1].isupper():
            target, modifier = modifier, ""
            if param.target and target not in param.target:
                raise _bad(
                    f"{code} cannot refer to {target} (allowed: {', '.join(param.target)})",
                    "CL-3402",
                )
        if modifier and modifier not in MODIFIERS.get(param.type, set()):
            unknown(f"Modifier :{modifier} is not supported on {code} ({param.type})")
            continue
        if modifier == "missing" and value not in ("true", "false"):
            raise _bad(f"{name} must be true or false, not {value!r}", "CL-3403")
        q.criteria.append(
            Criterion(code, param, param.type, modifier or None, split_values(value), target)
        )
    return q


def _result_param(
    q: SearchQuery,
    name: str,
    value: str,
    params: dict[str, SearchParam],
    max_count: int,
    unknown: object,
) -> None:
    if name == "_count":
        q.count = min(_positive_int("_count", value), max_count)
    elif name == "_sort":
        for key in (v.strip() for v in value.split(",") if v.strip()):
            desc = key.startswith("-")
            code = key.lstrip("-")
            if code in ("_id", "_lastUpdated"):
                q.sort.append(SortKey(code, desc, None))
            elif code in params and params[code].type in (
                "string",
                "date",
                "token",
                "number",
                "quantity",
                "uri",
                "reference",
            ):
                q.sort.append(SortKey(code, desc, params[code]))
            else:
                raise _bad(f"Cannot sort {q.resource_type} by {code!r}", "CL-3404")
    elif name == "_include":
        q.include.append(value)
    elif name == "_revinclude":
        q.revinclude.append(value)
    elif name == "_summary":
        if value not in ("true", "false", "text", "data", "count"):
            raise _bad(f"_summary must be true, false, text, data or count, not {value!r}")
        q.summary = value
    elif name == "_elements":
        q.elements = [e.strip() for e in value.split(",") if e.strip()]
    elif name == "_total":
        if value not in ("none", "estimate", "accurate"):
            raise _bad(f"_total must be none, estimate or accurate, not {value!r}")
        q.total = value
    elif name == "_cursor":
        q.cursor = value
