"""The FHIR engine: storage, search and REST, shared by every service."""

# The package's public modules (nothing is re-exported here: import from the module).
__all__ = [
    "definitions",
    "instant",
    "operations",
    "read_only",
    "rest",
    "search",
    "server",
    "storage",
    "validation",
]
