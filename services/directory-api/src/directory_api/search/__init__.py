"""Directory-specific search parameters (age, ...): their meaning lives here, the generic
machinery in ``closedloop.fhir.search``."""

__all__ = ["age", "hours", "place", "sites"]
