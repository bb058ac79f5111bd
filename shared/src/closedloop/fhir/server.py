"""``FhirServer``: one service's FHIR engine, assembled from storage, search and hooks.

A service builds one with the resource types it serves (and any extra search parameters), then
mounts ``closedloop.fhir.rest.routes.router`` on its app; the routes find the server on
``app.state.fhir``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from closedloop.db.engine import Database
from closedloop.fhir.search.definitions import SearchParam, SearchParamRegistry, load_standard
from closedloop.fhir.search.engine import SearchEngine
from closedloop.fhir.storage.indexer import Indexer
from closedloop.fhir.storage.repository import Repository
from closedloop.hooks import Hooks


@dataclass
class FhirConfig:
    resource_types: list[str]
    extra_search_params: list[SearchParam] = field(default_factory=list)
    max_body_bytes: int = 5 * 1024 * 1024
    default_count: int = 50
    max_count: int = 1000
    public_base_url: str | None = None  # e.g. https://referrals.example.org/fhir
    software_name: str = "Closed Loop"


class FhirServer:
    def __init__(
        self,
        db: Database,
        config: FhirConfig,
        hooks: Hooks | None = None,
        standard_params: Iterable[SearchParam] | None = None,
    ) -> None:
        self.db = db
        self.config = config
        self.hooks = hooks or Hooks()
        params = list(
            standard_params if standard_params is not None else load_standard(config.resource_types)
        )
        self.registry = SearchParamRegistry([*params, *config.extra_search_params])
        self.search = SearchEngine(
            db, self.registry, default_count=config.default_count, max_count=config.max_count
        )
        self.repo = Repository(
            db, Indexer(self.registry), self.hooks, matcher=self.search.match_ids
        )

    def supports(self, resource_type: str) -> bool:
        return resource_type in self.config.resource_types
