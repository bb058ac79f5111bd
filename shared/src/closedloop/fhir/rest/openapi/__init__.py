"""OpenAPI 3 for the FHIR API, generated from what the service serves (``document.py``), and
Swagger UI served from a bundled copy, never a CDN (``docs.py``)."""

# The package's public modules (nothing is re-exported here: import from the module).
__all__ = ["described", "docs", "document", "schemas"]
