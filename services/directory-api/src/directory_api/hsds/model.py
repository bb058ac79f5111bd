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
class Repair:
    """Something the importer fixed or guessed in a row it kept (or, with ``row`` empty, in
    how it found a whole file). ``kind`` is a short stable code (see ``REPAIR_KINDS`` in
    ``report``); ``reason`` says what exactly was done."""

    file: str
    row: int | str
    entity: str
    kind: str
    reason: str

    @classmethod
    def at(cls, where: Any, entity: str, kind: str, reason: str) -> Repair:
        file, row = where
        return cls(str(file), row, entity, kind, reason)

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "row": self.row,
            "entity": self.entity,
            "kind": self.kind,
            "reason": self.reason,
        }


@dataclass
class SourceFile:
    """One input file as the reader found it: its path relative to the package, the table it
    was read as (HSDS 3 name, after undoing 1.x and plural names) and how many rows it had."""

    name: str
    table: str
    rows: int = 0


@dataclass
class Loaded:
    """What a reader found: services (dereferenced), the rows it could not join, what it
    repaired on the way and the files it read."""

    format: str
    services: list[Record] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    repaired: list[Repair] = field(default_factory=list)
    files: list[SourceFile] = field(default_factory=list)


def origin(record: Record) -> tuple[str, int | str]:
    file, row = record.get("_origin") or ("?", "?")
    return file, row
