"""Index-row extractors, one module per ``sp_*`` table, keyed by the table kind.

The kinds match ``closedloop.fhir.storage.tables.INDEX_TABLES`` so the writer can look up both
the extractor and the table by the same name. Each ``extract(nodes)`` returns deduplicated rows
without ``res_pk``/``resource_type``/``param``; the caller adds those.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from closedloop.fhir.search.fhirpath import Node

RowExtractor = Callable[["list[Node]"], list[dict[str, Any]]]

EXTRACTORS: dict[str, RowExtractor] = {
    "token": token.extract,
    "string": string.extract,
    "date": date.extract,
    "number": number.extract,
    "quantity": quantity.extract,
    "reference": reference.extract,
    "uri": uri.extract,
    "coords": coords.extract,
    "text": text.extract,
    "area": area.extract,
}

__all__ = ["EXTRACTORS", "RowExtractor"]
