"""The one in-memory shape every reader produces: HSDS 3 dereferenced service dicts.

Readers undo format differences (tabular joins, 1.x/2.0 renames) so the mapping only knows
HSDS 3. Each dict may carry ``_origin`` (file, row) so a rejected record points at its source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Record = dict[str, Any]


@dataclass
class Rejection:
    file: str
    row: int | str
    entity: str
    reason: str

    @classmethod
    def at(cls, where: Any, entity: str, reason: str) -> Rejection:
        file, row = where
        return cls(str(file), row, entity, reason)

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "row": self.row, "entity": self.entity, "reason": self.reason}


@dataclass
class Loaded:
    """What a reader found: services (dereferenced) and the rows it could not join."""

    format: str
    services: list[Record] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)


def origin(record: Record) -> tuple[str, int | str]:
    file, row = record.get("_origin") or ("?", "?")
    return file, row
