"""The typed index tables, one module per ``sp_*`` table, and the one table that says which
kind a search parameter uses.

Each module holds its kind's row extraction, predicate, ordering and compiled-SQL shape behind
the ``IndexKind`` interface (``kind.py``). ``KINDS`` keys them by table kind, matching
``closedloop.fhir.storage.tables.INDEX_TABLES`` so the writer finds both by the same name.
``BY_TYPE`` maps a search parameter type to its kind: extraction, predicates, ordering and the
compiled-SQL cache all go through it (and ``kind_of``), so they cannot disagree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from closedloop.fhir.search.index import (
    area,
    coords,
    date,
    number,
    quantity,
    reference,
    string,
    text,
    token,
    uri,
)
from closedloop.fhir.search.index.kind import IndexKind

if TYPE_CHECKING:
    from closedloop.fhir.search.definitions import SearchParam

# Search parameter type → its index kind (composite has no table yet; special, see below).
BY_TYPE: dict[str, IndexKind] = {
    "token": token.KIND,
    "string": string.KIND,
    "date": date.KIND,
    "number": number.KIND,
    "quantity": quantity.KIND,
    "reference": reference.KIND,
    "uri": uri.KIND,
}
# ``special`` parameters are opaque in the spec; these expressions have an index all the same.
SPECIAL_KINDS: dict[str, IndexKind] = {"Location.position": coords.KIND}
# Kinds only a parameter's own ``SearchParam.kind`` picks.
_NAMED_ONLY = (coords.KIND, text.KIND, area.KIND)

KINDS: dict[str, IndexKind] = {kind.name: kind for kind in (*BY_TYPE.values(), *_NAMED_ONLY)}


def kind_of(param: SearchParam) -> IndexKind | None:
    """The index kind a parameter searches, or None if it has none."""
    if param.kind is not None:
        return KINDS[param.kind]
    if param.type == "special":
        return SPECIAL_KINDS.get((param.expression or "").strip())
    return BY_TYPE.get(param.type)


__all__ = [
    "BY_TYPE",
    "KINDS",
    "SPECIAL_KINDS",
    "IndexKind",
    "area",
    "coords",
    "date",
    "kind",
    "kind_of",
    "number",
    "quantity",
    "reference",
    "string",
    "text",
    "token",
    "uri",
]
