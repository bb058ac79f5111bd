"""FHIR REST: routes, content negotiation, Prefer/ETag handling, CapabilityStatement, errors."""
