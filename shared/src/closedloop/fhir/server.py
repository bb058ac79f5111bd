"""``FhirServer``: one service's FHIR engine, assembled from storage, search and hooks.

A service builds one with the resource types it serves (and any extra search parameters), then
mounts ``closedloop.fhir.rest.routes.router`` on its app; the routes find the server on
``app.state.fhir``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from closedloop import errors
from closedloop.context import Authenticator
from closedloop.db.engine import Database
from closedloop.fhir import read_only
from closedloop.fhir.search.definitions import SearchParam, SearchParamRegistry, load_standard
from closedloop.fhir.search.engine import Planner, SearchEngine
from closedloop.fhir.search.limits import (
    DEFAULT_MAX_PARAMETERS,
    DEFAULT_MAX_VALUES,
    DEFAULT_TIMEOUT_MS,
)
from closedloop.fhir.search.narrowing import Narrower
from closedloop.fhir.storage.indexer import Indexer
from closedloop.fhir.storage.repository import Repository
from closedloop.hooks import Hooks

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "testserver"})
"""Host names trusted by default: loopback ones, and the name in-process test clients send
(not a resolvable name, so a link on it sends nobody elsewhere)."""

Operation = Callable[..., Awaitable[Any]]
"""A $operation handler: (request, resource_type, resource_id | None) -> Response."""


@dataclass
class FhirConfig:
    resource_types: list[str]  # served over REST
    internal_types: list[str] = field(default_factory=list)  # stored and searchable, not served
    read_only_types: list[str] = field(default_factory=list)  # served for reading only
    extra_search_params: list[SearchParam] = field(default_factory=list)
    max_body_bytes: int = 5 * 1024 * 1024
    default_count: int = 50
    max_count: int = 1000
    max_search_values: int = DEFAULT_MAX_VALUES
    max_search_parameters: int = DEFAULT_MAX_PARAMETERS
    search_timeout_ms: int = DEFAULT_TIMEOUT_MS
    public_base_url: str | None = None  # e.g. https://referrals.example.org/fhir
    # Without a public base: the Host names a request's own base is trusted for (links), and
    # the base every other request gets (``FhirServer.base_url``)
    trusted_hosts: frozenset[str] = LOOPBACK_HOSTS
    default_base_url: str = "http://127.0.0.1:8080/fhir"
    software_name: str = "Closed Loop"
    operations: dict[str, Operation] = field(default_factory=dict)
    # search parameter code -> function turning its value into what the index understands
    # (e.g. a ZIP code into latitude|longitude for a geo search)
    value_resolvers: dict[str, Callable[[str], str]] = field(default_factory=dict)
    # functions answering some search criteria their own way (``search.engine.Planner``)
    planners: list[Planner] = field(default_factory=list)
    # tables a service derives from the index rows, rebuilt (in a write transaction) after a
    # reindex, which writes index rows without firing hooks
    derived_indexes: list[Callable[[Any], Awaitable[None]]] = field(default_factory=list)
    # extensions to put on a type's CapabilityStatement entry (e.g. subscription topics)
    capability_extensions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # when authorization is on: the SMART configuration served at
    # /fhir/.well-known/smart-configuration (also the CapabilityStatement's rest.security)
    smart_configuration: dict[str, Any] | None = None
    security: dict[str, Any] | None = None  # CapabilityStatement.rest.security


class FhirServer:
    def __init__(
        self,
        db: Database,
        config: FhirConfig,
        hooks: Hooks | None = None,
        standard_params: Iterable[SearchParam] | None = None,
        authenticator: Authenticator | None = None,
    ) -> None:
        self.db = db
        self.config = config
        self.hooks = hooks or Hooks()
        # reads a request's bearer token into its context (None: every request is anonymous)
        self.authenticator = authenticator
        # what a request's caller may see, as SQL (``closedloop.fhir.search.narrowing``);
        # None: everything
        self.narrower: Narrower | None = None
        # the audit trail (closedloop.audit.trail.AuditTrail) when the service keeps one
        self.audit: Any = None
        read_only.install(self.hooks, config.read_only_types)
        stored = [*config.resource_types, *config.internal_types]
        params = list(standard_params if standard_params is not None else load_standard(stored))
        self.registry = SearchParamRegistry([*params, *config.extra_search_params])
        self.search = SearchEngine(
            db,
            self.registry,
            default_count=config.default_count,
            max_count=config.max_count,
            max_values=config.max_search_values,
            max_parameters=config.max_search_parameters,
            timeout_ms=config.search_timeout_ms,
            value_resolvers=config.value_resolvers,
            planners=config.planners,
        )
        self.repo = Repository(
            db, Indexer(self.registry), self.hooks, matcher=self.search.match_ids
        )
        # $operations served here: name -> handler(request, type, id | None)
        self.operations: dict[str, Operation] = dict(config.operations)

    def supports(self, resource_type: str) -> bool:
        return resource_type in self.config.resource_types

    def require_type(self, resource_type: str) -> None:
        """404 for a type this service does not serve."""
        if not self.supports(resource_type):
            raise errors.not_found(
                f"Resource type {resource_type!r} is not supported by this "
                f"service (supported: {', '.join(self.config.resource_types)})",
                cl_code="CL-1404",
            )

    def base_url(self, request_base: str) -> str:
        """The FHIR base clients see in ``Location``, ``fullUrl`` and paging links: the
        configured public one; else the request's own base (scheme://host[/root]) + ``/fhir``
        when its Host is a trusted name; else the default base. A client-supplied Host never
        puts a name of its choosing into links (Host header injection)."""
        configured = self.config.public_base_url
        if configured:
            return configured.rstrip("/")
        try:
            host = (urlsplit(request_base).hostname or "").lower()
        except ValueError:  # a Host that is not a host name ("[x")
            host = ""
        if host in self.config.trusted_hosts:
            return request_base.rstrip("/") + "/fhir"
        return self.config.default_base_url
