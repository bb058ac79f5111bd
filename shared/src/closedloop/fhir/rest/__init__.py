"""FHIR REST: routes, content negotiation, Prefer/ETag handling, CapabilityStatement, errors."""

# The package's public modules (nothing is re-exported here: import from the module).
__all__ = [
    "bundles",
    "capability",
    "disconnect",
    "dispatch",
    "fast",
    "guards",
    "handlers",
    "history",
    "negotiation",
    "openapi",
    "prefer",
    "responses",
    "routes",
    "steps",
    "xml",
]
