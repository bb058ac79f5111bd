"""Turn one resource into the rows of the typed search index tables.

Built once per resource type (every expression compiled up front) and then called on every
create/update, so ``extract`` is only a loop over pre-bound closures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from closedloop.fhir.search.fhirpath import Evaluator, compile_expression
from closedloop.fhir.search.index import kind_of
from closedloop.fhir.search.index.token import extract_of_type

if TYPE_CHECKING:
    from closedloop.fhir.search.definitions import SearchParam

RowExtractor = Callable[[list[Any]], list[dict[str, Any]]]

# Searchable, but served from columns of the ``resources`` table, so never indexed as rows.
COLUMN_PARAMS = frozenset(("_id", "_lastUpdated"))


class IndexExtractor:
    """Index rows for one resource type.

    ``supported`` holds the parameters whose expression compiled and whose type has an index
    table, including ``_id``/``_lastUpdated`` (searchable via ``resources`` columns, see
    ``COLUMN_PARAMS``) which ``extract`` does not emit rows for.
    """

    def __init__(self, resource_type: str, params: Iterable[SearchParam]) -> None:
        self.resource_type = resource_type
        self.supported: dict[str, SearchParam] = {}
        plan: list[tuple[str, Evaluator, str, RowExtractor]] = []
        for param in params:
            kind = kind_of(param)
            if kind is None or not param.expression:
                continue
            evaluate = compile_expression(param.expression, resource_type)
            if evaluate is None:
                continue
            self.supported[param.code] = param
            if param.code not in COLUMN_PARAMS:
                plan.append((param.code, evaluate, kind.name, param.extract or kind.extract))
        self._plan = tuple(plan)

    def extract(self, resource: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        """Table kind → rows; each row has ``param`` plus its table's value columns."""
        out: dict[str, list[dict[str, Any]]] = {}
        for code, evaluate, kind, rows_of in self._plan:
            nodes = evaluate(resource)
            if not nodes:
                continue
            rows = rows_of(nodes)
            if not rows:
                continue
            for row in rows:
                row["param"] = code
            if kind == "token":
                typed = extract_of_type(nodes)
                for row in typed:
                    row["param"] = f"{code}:of-type"
                rows = rows + typed
            bucket = out.get(kind)
            if bucket is None:
                out[kind] = rows
            else:
                bucket.extend(rows)
        return out
