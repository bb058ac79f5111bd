"""OpenAPI 3 for the FHIR API, generated from what the service serves (``document.py``), and
Swagger UI served from a bundled copy, never a CDN (``docs.py``)."""
