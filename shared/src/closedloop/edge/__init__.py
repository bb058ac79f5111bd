"""What a service does at its edge before the FHIR API: per-client rate limits and CORS."""

__all__ = ["cors", "ratelimit"]
