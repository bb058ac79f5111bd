"""Closed Loop's shared FHIR engine.

Layers point one way: ``errors``, ``context`` and ``hooks`` are leaves; ``db`` sits above them,
then ``fhir.storage``, ``fhir.search`` and ``fhir.rest``. Services import this package; this
package never names a service.
"""

__all__ = [
    "cli",
    "context",
    "db",
    "errors",
    "fhir",
    "health",
    "hooks",
    "http",
    "logs",
    "service",
    "settings",
    "testing",
]
