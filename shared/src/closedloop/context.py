"""Who is calling, and with which scopes: built once per request and passed to every interaction.

Authorization (a later layer) reads this in the hooks; storage only carries it along.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RequestContext:
    request_id: str = "-"
    subject: str | None = None  # None: anonymous
    scopes: frozenset[str] = field(default_factory=frozenset)
    organization: str | None = None
    base_url: str = ""  # the FHIR base as the client sees it, e.g. http://127.0.0.1:8081/fhir

    @property
    def anonymous(self) -> bool:
        return self.subject is None


SYSTEM = RequestContext(request_id="system", subject="system")
