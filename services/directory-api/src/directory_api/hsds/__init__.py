"""HSDS import and export: readers -> mapping -> importer (+ report); export for the reverse."""

__all__ = [
    "commands",
    "export",
    "importer",
    "languages",
    "mapping",
    "model",
    "readers",
    "report",
    "times",
]
