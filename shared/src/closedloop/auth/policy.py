"""The authorization policy: deny by default, allow what the caller's SMART scopes grant.

It listens on the hook points (``closedloop.hooks``) and never on storage itself:

- ``request``: every interaction, and each entry of a batch or transaction, needs a token
  (401 without one; the CapabilityStatement is public) and the scope letter of its interaction
  on its type (403 naming the scope). An operation is judged as the interaction it amounts to.
  System history needs search on every type served.
- ``before_create``: a write that creates needs ``c``, whatever path it took (an update or a
  conditional update that creates, a transaction entry).
- ``before_search``: ``_include``/``_revinclude`` naming a type (``Task:owner:Organization``,
  ``Provenance:target``) needs read on that type, and a chain (``Task?patient.name=x``) or a
  reverse chain (``Patient?_has:Task:patient:status=x``) needs search on every type it
  searches: a filter on a type is a question about it, even when none of it is shown.
- ``before_show``: every resource about to be sent needs read (search matches: search;
  history entries: either) on its type, so an include of a type the caller may not read is
  refused, never leaked.

Writes that a service's own rules make inside the caller's unit of work (referral-api
completing a ServiceRequest when its Task ends) are the server's doing, not the caller's, and
need no scope of their own. The ``SYSTEM`` context (the services' own jobs) is not judged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from closedloop import errors
from closedloop.auth.scopes import (
    AUTHENTICATED_ONLY,
    INTERACTION_LETTER,
    PUBLIC,
    needed_scope,
    rules_for,
)
from closedloop.auth.tokens import challenge, unauthorized
from closedloop.context import SYSTEM, RequestContext
from closedloop.hooks import Change, HookPoint, Hooks, Interaction, Shown


class Criterion(Protocol):
    """What the policy reads of a parsed search criterion (``fhir.search.query.Criterion``):
    the types a chain reaches and the source of a reverse chain."""

    code: str
    chain: list[tuple[str, Any]]
    has: tuple[str, str, Any] | None


class ParsedSearch(Protocol):
    @property
    def criteria(self) -> list[Any]: ...


Parse = Callable[[str, list[tuple[str, str]]], ParsedSearch]


def forbidden(realm: str, resource_type: str, letter: str, why: str) -> errors.FhirError:
    scope = needed_scope(resource_type, letter)
    return errors.FhirError(
        403,
        [errors.Issue("error", "forbidden", f"needs {scope} ({why})", (), "CL-1303")],
        {"WWW-Authenticate": challenge(realm, "insufficient_scope", f"needs {scope}", scope=scope)},
    )


class ScopePolicy:
    def __init__(self, realm: str, served_types: Iterable[str]) -> None:
        self.realm = realm
        self.served_types = tuple(served_types)
        self.parse: Parse | None = None  # the search engine's parser, to see chains

    def read_chains_with(self, parse: Parse) -> None:
        """Judge chained and reverse-chained searches with the server's own parser (it knows
        which types a chain can reach), once the server exists."""
        self.parse = parse

    def install(self, hooks: Hooks) -> None:
        hooks.register(HookPoint.REQUEST, self.on_request)
        hooks.register(HookPoint.BEFORE_CREATE, self.on_create)
        hooks.register(HookPoint.BEFORE_SEARCH, self.on_search)
        hooks.register(HookPoint.BEFORE_SHOW, self.on_show)

    def _require(self, ctx: RequestContext, resource_type: str, letter: str, why: str) -> None:
        if not rules_for(ctx.scopes).allows(resource_type, letter):
            raise forbidden(self.realm, resource_type, letter, why)

    async def on_request(self, ctx: RequestContext, interaction: Interaction, /) -> None:
        if ctx is SYSTEM or interaction.name in PUBLIC:
            return
        if ctx.anonymous:
            raise unauthorized(self.realm, "an access token is required", missing=True)
        name = interaction.effective
        if name in AUTHENTICATED_ONLY and interaction.name != "operation":
            return
        letter = INTERACTION_LETTER.get(name)
        what = f"${interaction.operation}" if interaction.operation else name
        if letter is None:
            raise errors.FhirError(
                403,
                [errors.Issue("error", "forbidden", f"{what} is not allowed", (), "CL-1303")],
            )
        if interaction.resource_type is None:  # system level: every type served
            for resource_type in self.served_types:
                self._require(ctx, resource_type, letter, what)
            return
        self._require(ctx, interaction.resource_type, letter, what)

    async def on_create(self, ctx: RequestContext, change: Change, /) -> None:
        if ctx is SYSTEM:
            return
        self._require(ctx, change.resource_type, "c", f"{change.resource_type} would be created")

    async def on_search(
        self, ctx: RequestContext, resource_type: str, pairs: list[tuple[str, str]], /
    ) -> None:
        if ctx is SYSTEM:
            return
        for name, value in pairs:
            if name.split(":", 1)[0] not in ("_include", "_revinclude"):
                continue
            for spec in value.split(","):
                parts = spec.split(":")
                if name.startswith("_revinclude"):
                    named = parts[0]  # Source:param: the resources that refer to the matches
                else:
                    named = parts[2] if len(parts) >= 3 and parts[2] != "iterate" else ""
                if named and named != "*":
                    self._require(ctx, named, "r", f"{name}={spec}")
        if self.parse is not None and any("." in n or n.startswith("_has:") for n, _ in pairs):
            for criterion in self.parse(resource_type, pairs).criteria:
                self._require_chain(ctx, criterion)

    def _require_chain(self, ctx: RequestContext, criterion: Criterion) -> None:
        for target, inner in criterion.chain:
            self._require(ctx, target, "s", f"the chained search {criterion.code}.")
            self._require_chain(ctx, inner)
        if criterion.has is not None:
            source, code, inner = criterion.has
            self._require(ctx, source, "s", f"the reverse chain _has:{source}:{code}")
            self._require_chain(ctx, inner)

    async def on_show(self, ctx: RequestContext, shown: Sequence[Shown], /) -> None:
        if ctx is SYSTEM:
            return
        rules = rules_for(ctx.scopes)
        for item in shown:
            letter = "s" if item.mode == "match" else "r"
            if item.mode == "history" and rules.allows(item.resource_type, "s"):
                continue  # type and system history are searches (instance history: read)
            if not rules.allows(item.resource_type, letter):
                why = "an included resource" if item.mode == "include" else item.mode
                raise forbidden(self.realm, item.resource_type, letter, why)
