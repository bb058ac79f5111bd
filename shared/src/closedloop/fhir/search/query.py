"""Parse a FHIR search query string into a ``SearchQuery``: parameters, modifiers, prefixes.

Parsing knows the parameter types (from the registry) but nothing of SQL. Unknown parameters are
collected as warnings (or refused under ``Prefer: handling=strict``); malformed values are always
a 400, in either mode: a search that silently ignores a bad date answers the wrong question.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from closedloop import errors
from closedloop.errors import Issue
from closedloop.fhir.search import limits
from closedloop.fhir.search.definitions import SearchParam
from closedloop.fhir.search.index import BY_TYPE, SPECIAL_KINDS, kind_of
from closedloop.fhir.search.syntax import split_unescaped

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
# Index kinds a parameter names itself (``SearchParam.kind``) that need no ``condition`` of
# its own to be searched.
PARAM_KINDS = frozenset(("text", "area"))


def queryable(param: SearchParam) -> bool:
    """Can this parameter be searched? (``special`` ones only when they are geo ``near`` or
    name their own index kind.)"""
    if param.kind in PARAM_KINDS or param.condition is not None:
        return True
    if param.type == "special":
        return (param.expression or "").strip() in SPECIAL_KINDS
    return param.type in BY_TYPE


@dataclass
class Criterion:
    """One parameter occurrence: its values are ORed; criteria are ANDed."""

    code: str
    param: SearchParam | None  # None for _id/_lastUpdated
    type: str
    modifier: str | None
    values: list[str]
    target_type: str | None = None  # for reference ``:Type`` modifiers
    # chaining (``subject:Patient.name=x``): per possible target type, the criterion on it
    chain: list[tuple[str, Criterion]] = field(default_factory=list)
    # reverse chaining (``_has:Task:focus:status=x``): (source type, its reference parameter,
    # the criterion the source must meet)
    has: tuple[str, str, Criterion] | None = None


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
    # what the service's planners made of the criteria: (criteria left, their conditions),
    # worked out once per query by the engine
    planned: tuple[list[Criterion], list[Any]] | None = field(
        default=None, repr=False, compare=False
    )


def split_values(value: str) -> list[str]:
    """The comma-separated (OR) values, still escaped: a token splits ``system|code`` at an
    unescaped ``|`` before unescaping."""
    return split_unescaped(value, ",")


def parse_pairs(query_string: str) -> list[tuple[str, str]]:
    return parse_qsl(query_string, keep_blank_values=True)


def _bad(text: str, code: str = "CL-3400") -> errors.FhirError:
    return errors.invalid(text, cl_code=code)


ParamLookup = Callable[[str], dict[str, SearchParam]]
"""resource type -> its search parameters (``SearchParamRegistry.for_type``)."""

_MAX_CHAIN = 3


def check_size(pairs: list[tuple[str, str]], max_values: int, max_parameters: int) -> None:
    """Refuse a search with more than ``max_values`` parameters and comma-separated values in
    all, or more than ``max_parameters`` parameters (each one more join to plan)."""
    if len(pairs) > max_parameters:
        raise limits.too_costly(
            f"This search has {len(pairs)} parameters; at most {max_parameters} are allowed "
            "in one search (the server's MAX_SEARCH_PARAMETERS setting)",
            400,
            "CL-3460",
        )
    total = 0
    for _name, value in pairs:
        total += len(split_values(value)) if "," in value else 1
        if total > max_values:
            counted = sum(len(split_values(v)) for _, v in pairs)
            raise limits.too_costly(
                f"This search has {counted} values (parameters and their comma-separated "
                f"values); at most {max_values} are allowed in one search (the server's "
                "MAX_SEARCH_VALUES setting)",
                400,
                "CL-3461",
            )


class UnknownParameter(Exception):
    """A parameter (or modifier) the server does not know: a warning, or 400 when strict."""


def parse_criterion(
    resource_type: str, name: str, value: str, lookup: ParamLookup, depth: int = 0
) -> Criterion:
    """One ``name=value`` pair, including chains and ``_has`` (recursively)."""
    if depth > _MAX_CHAIN:
        raise _bad(f"{name}: chains may be at most {_MAX_CHAIN} links long", "CL-3406")
    if name.startswith("_has:"):
        return _parse_has(resource_type, name, value, lookup, depth)
    head, dot, rest = name.partition(".")
    code, _, modifier = head.partition(":")
    if code == "_id" and not dot:
        return Criterion(code, None, "token", modifier or None, split_values(value))
    if code == "_lastUpdated" and not dot:
        return Criterion(code, None, "date", modifier or None, split_values(value))
    params = lookup(resource_type)
    param = params.get(code)
    if param is None:
        raise UnknownParameter(f"Unknown search parameter {code!r} for {resource_type}")
    if not queryable(param):
        raise UnknownParameter(
            f"Searching {resource_type} by {code} ({param.type}) is not supported yet"
        )
    target = None
    if modifier and param.type == "reference" and modifier[:1].isupper():
        target, modifier = modifier, ""
        if param.target and target not in param.target:
            raise _bad(
                f"{code} cannot refer to {target} (allowed: {', '.join(param.target)})",
                "CL-3402",
            )
    if dot:
        return _parse_chain(resource_type, param, target, modifier, rest, value, lookup, depth)
    kind = kind_of(param)
    if modifier and (kind is None or modifier not in kind.modifiers):
        raise UnknownParameter(f"Modifier :{modifier} is not supported on {code} ({param.type})")
    if modifier == "missing" and value not in ("true", "false"):
        raise _bad(f"{name} must be true or false, not {value!r}", "CL-3403")
    return Criterion(code, param, param.type, modifier or None, split_values(value), target)


def _parse_chain(
    resource_type: str,
    param: SearchParam,
    target: str | None,
    modifier: str,
    rest: str,
    value: str,
    lookup: ParamLookup,
    depth: int,
) -> Criterion:
    if param.type != "reference" or modifier:
        raise _bad(f"Only a reference parameter can be chained, not {param.code}", "CL-3407")
    targets = [target] if target else list(param.target)
    chain = []
    for t in targets:
        try:
            chain.append((t, parse_criterion(t, rest, value, lookup, depth + 1)))
        except UnknownParameter:
            continue
    if not chain:
        raise UnknownParameter(
            f"Cannot chain {resource_type}.{param.code} to {rest!r}: no target type of "
            f"{param.code} served here has that parameter"
        )
    return Criterion(param.code, param, "reference", None, [], target, chain=chain)


def _parse_has(
    resource_type: str, name: str, value: str, lookup: ParamLookup, depth: int
) -> Criterion:
    parts = name.split(":", 3)
    if len(parts) != 4 or not all(parts[1:]):
        raise _bad(f"{name}: use _has:Type:reference-parameter:search-parameter", "CL-3408")
    _, source, ref_code, inner = parts
    ref = lookup(source).get(ref_code)
    if ref is None or ref.type != "reference":
        raise UnknownParameter(f"_has: {source} has no reference parameter {ref_code!r}")
    if ref.target and resource_type not in ref.target:
        raise _bad(f"_has: {source}.{ref_code} cannot refer to {resource_type}", "CL-3409")
    inner_criterion = parse_criterion(source, inner, value, lookup, depth + 1)
    return Criterion("_has", None, "reference", None, [], has=(source, ref_code, inner_criterion))


def parse_query(
    resource_type: str,
    pairs: list[tuple[str, str]],
    lookup: ParamLookup,
    *,
    strict: bool = False,
    max_count: int = 1000,
) -> SearchQuery:
    q = SearchQuery(resource_type)
    params = lookup(resource_type)
    for name, value in pairs:
        if name in (
            "_include:iterate",
            "_revinclude:iterate",
            "_include:recurse",
            "_revinclude:recurse",
        ):
            name, value = name.split(":")[0], f"{value}:iterate"
        if name in RESULT_PARAMS:
            _result_param(q, name, value, params, max_count)
            continue
        try:
            q.criteria.append(parse_criterion(resource_type, name, value, lookup))
        except UnknownParameter as exc:
            if strict:
                raise _bad(str(exc), "CL-3401") from None
            q.warnings.append(errors.warning(str(exc), "not-supported", "CL-3401"))
    if q.count == 0:
        # R4 search 3.1.1.5: "_count=0 ... treated the same as _summary=count" (the total,
        # no entries), which is what client libraries' count() asks for
        q.summary = "count"
    return q


def _sortable(param: SearchParam) -> bool:
    """Can ``_sort`` order by it? A searchable parameter of a kind that sorts, answered by its
    index rather than a condition of its own."""
    kind = kind_of(param)
    return queryable(param) and kind is not None and kind.sortable and param.condition is None


def _result_param(
    q: SearchQuery, name: str, value: str, params: dict[str, SearchParam], max_count: int
) -> None:
    if name == "_count":
        q.count = min(limits.whole_number("_count", value), max_count)
    elif name == "_sort":
        for key in (v.strip() for v in value.split(",") if v.strip()):
            desc = key.startswith("-")
            code = key.lstrip("-")
            if code in ("_id", "_lastUpdated"):
                q.sort.append(SortKey(code, desc, None))
            elif code in params and _sortable(params[code]):
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
