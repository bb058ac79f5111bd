"""What the store hands back: stored JSON text plus the version facts the REST layer needs."""

from __future__ import annotations

from dataclasses import dataclass, field

from closedloop.errors import Issue
from closedloop.fhir.instant import format_instant, http_date


@dataclass(frozen=True)
class StoredResource:
    resource_type: str
    id: str
    version_id: int
    last_updated: int  # microseconds since the epoch
    content: str | None  # None for a deleted version
    method: str = ""  # for history entries: POST | PUT | PATCH | DELETE

    @property
    def deleted(self) -> bool:
        return self.content is None

    @property
    def etag(self) -> str:
        return f'W/"{self.version_id}"'

    @property
    def last_modified(self) -> str:
        return http_date(self.last_updated)

    @property
    def last_updated_iso(self) -> str:
        return format_instant(self.last_updated)

    @property
    def location(self) -> str:
        return f"{self.resource_type}/{self.id}/_history/{self.version_id}"


@dataclass(frozen=True)
class WriteResult:
    """The outcome of create/update/patch/delete; ``created`` picks 201 over 200."""

    stored: StoredResource
    created: bool = False
    changed: bool = True  # False when a conditional create matched or an update was a no-op
    warnings: list[Issue] = field(default_factory=list)  # from hooks, e.g. a full CBO
