"""The FHIR store: tables, versioned writes with their index rows, reads and history."""

# The package's public modules (nothing is re-exported here: import from the module).
__all__ = [
    "first_version",
    "indexer",
    "records",
    "reindex",
    "repository",
    "revisions",
    "tables",
]
