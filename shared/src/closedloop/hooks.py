"""Named hook points where policy, audit, business rules and the outbox plug in.

Storage and the REST layer fire these; nothing in storage imports the code that listens. Each
point has its own typed listener protocol (below), so a listener with the wrong signature is a
type error rather than a failure at run time.

- ``request``: every interaction a client asks for, before any work, with what it asks
  (``Interaction``); fired once per REST call and once more for each entry of a batch or
  transaction. Authorization refuses here (raise ``FhirError``).
- ``before_transaction``: the writes a request is about to make, before any transaction opens:
  slow checks (another service over HTTP) belong there, never while locks are held.
- ``validate``: profile rules (``$validate`` runs them too); raise to refuse, append warnings.
- ``before_create`` / ``before_update`` / ``before_delete``: one change inside the unit of work;
  raise to refuse (the transaction is rolled back).
- ``before_commit``: the unit of work itself, so listeners can write rows (an outbox) or more
  resources in the same transaction; ``after_commit``: the changes, once durable.
- ``before_search``: a type-level search's resource type and parameters, before it is planned.
- ``before_show``: the stored resources a response is about to carry (read, vread, history,
  search matches and includes, batch GET entries), before any byte is sent; raise to refuse.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol, TypeAlias, overload

from sqlalchemy.ext.asyncio import AsyncConnection

from closedloop.context import RequestContext
from closedloop.errors import Issue


class HookPoint(StrEnum):
    REQUEST = "request"  # (ctx, interaction: Interaction)
    BEFORE_TRANSACTION = "before_transaction"  # (ctx, planned: list[PlannedWrite])
    VALIDATE = "validate"  # (ctx, resource_type, resource, report: list[Issue]); raise to refuse
    BEFORE_CREATE = "before_create"  # (ctx, change: Change)
    BEFORE_UPDATE = "before_update"  # (ctx, change: Change)  change.previous holds the old body
    BEFORE_DELETE = "before_delete"  # (ctx, change: Change)
    BEFORE_COMMIT = "before_commit"  # (ctx, uow): uow.conn, uow.changes; may write more
    AFTER_COMMIT = "after_commit"  # (ctx, changes: list[Change])
    BEFORE_SEARCH = "before_search"  # (ctx, resource_type: str, pairs: list[(name, value)])
    BEFORE_SHOW = "before_show"  # (ctx, shown: Sequence[Shown])


@dataclass(frozen=True)
class Interaction:
    """What one request, or one entry of a batch or transaction, asks to do.

    ``name`` is a FHIR interaction code (``read``, ``vread``, ``update``, ``patch``,
    ``delete``, ``history-instance``, ``history-type``, ``history-system``, ``create``,
    ``search-type``, ``capabilities``, ``batch``, ``transaction``) or ``operation``. An
    operation says which plain interaction it amounts to (``like``: ``$validate`` of a new
    resource is like a create), so a policy needs no table of every operation."""

    name: str
    resource_type: str | None = None
    resource_id: str | None = None
    operation: str | None = None  # for name == "operation": its name without the "$"
    like: str | None = None  # for name == "operation": the interaction it amounts to

    @property
    def effective(self) -> str:
        """The interaction a policy should judge: ``like`` for an operation, else ``name``."""
        return self.like or self.name


@dataclass(frozen=True)
class Shown:
    """One stored resource a response is about to carry, as stored JSON text (nothing is
    parsed on the read path unless a listener asks for ``resource()``)."""

    resource_type: str
    resource_id: str
    content: str
    mode: str = "read"  # read | match | include | history

    def resource(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.content)
        return parsed


@dataclass
class Change:
    """One resource change inside a unit of work."""

    interaction: str  # create | update | delete
    resource_type: str
    resource_id: str
    version_id: int
    resource: dict[str, Any] | None  # the new body (None on delete)
    previous: dict[str, Any] | None = None
    warnings: list[Issue] = field(default_factory=list)  # hooks add; the response carries them
    notes: dict[str, Any] = field(default_factory=dict)  # hooks pass data to later hook points


@dataclass
class UnitOfWork:
    """One database transaction of writes (storage opens it): ``before_commit`` listeners get
    it, to write rows of their own (an outbox) or more resources on the same connection."""

    conn: AsyncConnection
    ctx: RequestContext
    changes: list[Change] = field(default_factory=list)


@dataclass
class PlannedWrite:
    """A create or update a request is about to make, as the client sent it (before any
    transaction: ids from ``urn:uuid`` references are not resolved yet, and a conditional
    update's id is not known)."""

    interaction: str  # create | update
    resource_type: str
    resource_id: str | None  # None for a create, or an update by criteria
    resource: dict[str, Any]


# -- one listener protocol per hook point (positional, so parameter names are free) -----------


class RequestHook(Protocol):
    async def __call__(self, ctx: RequestContext, interaction: Interaction, /) -> None: ...


class TransactionHook(Protocol):
    async def __call__(self, ctx: RequestContext, planned: list[PlannedWrite], /) -> None: ...


class ValidateHook(Protocol):
    async def __call__(
        self, ctx: RequestContext, resource_type: str, resource: Any, report: list[Issue], /
    ) -> None: ...


class ChangeHook(Protocol):
    async def __call__(self, ctx: RequestContext, change: Change, /) -> None: ...


class CommitHook(Protocol):
    async def __call__(self, ctx: RequestContext, uow: UnitOfWork, /) -> None: ...


class AfterCommitHook(Protocol):
    async def __call__(self, ctx: RequestContext, changes: list[Change], /) -> None: ...


class SearchHook(Protocol):
    async def __call__(
        self, ctx: RequestContext, resource_type: str, pairs: list[tuple[str, str]], /
    ) -> None: ...


class ShowHook(Protocol):
    async def __call__(self, ctx: RequestContext, shown: Sequence[Shown], /) -> None: ...


AnyHook: TypeAlias = (
    RequestHook
    | TransactionHook
    | ValidateHook
    | ChangeHook
    | CommitHook
    | AfterCommitHook
    | SearchHook
    | ShowHook
)
_CHANGES = Literal[HookPoint.BEFORE_CREATE, HookPoint.BEFORE_UPDATE, HookPoint.BEFORE_DELETE]


@dataclass
class Hooks:
    """A registry of listeners per hook point; one per app."""

    _listeners: dict[HookPoint, list[Any]] = field(default_factory=dict)

    @overload
    def register(self, point: Literal[HookPoint.REQUEST], hook: RequestHook) -> RequestHook: ...
    @overload
    def register(
        self, point: Literal[HookPoint.BEFORE_TRANSACTION], hook: TransactionHook
    ) -> TransactionHook: ...
    @overload
    def register(self, point: Literal[HookPoint.VALIDATE], hook: ValidateHook) -> ValidateHook: ...
    @overload
    def register(self, point: _CHANGES, hook: ChangeHook) -> ChangeHook: ...
    @overload
    def register(self, point: Literal[HookPoint.BEFORE_COMMIT], hook: CommitHook) -> CommitHook: ...
    @overload
    def register(
        self, point: Literal[HookPoint.AFTER_COMMIT], hook: AfterCommitHook
    ) -> AfterCommitHook: ...
    @overload
    def register(self, point: Literal[HookPoint.BEFORE_SEARCH], hook: SearchHook) -> SearchHook: ...
    @overload
    def register(self, point: Literal[HookPoint.BEFORE_SHOW], hook: ShowHook) -> ShowHook: ...
    def register(self, point: HookPoint, hook: Any) -> Any:
        self._listeners.setdefault(point, []).append(hook)
        return hook

    def include(self, other: Hooks) -> None:
        """Add ``other``'s listeners after this registry's own (an app's hooks are built anew
        for each start, policy first, from what the service registered)."""
        for point, listeners in other._listeners.items():
            self._listeners.setdefault(point, []).extend(listeners)

    def has(self, point: HookPoint) -> bool:
        return bool(self._listeners.get(point))

    @overload
    async def fire(
        self, point: Literal[HookPoint.REQUEST], ctx: RequestContext, interaction: Interaction, /
    ) -> None: ...
    @overload
    async def fire(
        self,
        point: Literal[HookPoint.BEFORE_TRANSACTION],
        ctx: RequestContext,
        planned: list[PlannedWrite],
        /,
    ) -> None: ...
    @overload
    async def fire(
        self,
        point: Literal[HookPoint.VALIDATE],
        ctx: RequestContext,
        resource_type: str,
        resource: Any,
        report: list[Issue],
        /,
    ) -> None: ...
    @overload
    async def fire(self, point: _CHANGES, ctx: RequestContext, change: Change, /) -> None: ...
    @overload
    async def fire(
        self, point: Literal[HookPoint.BEFORE_COMMIT], ctx: RequestContext, uow: UnitOfWork, /
    ) -> None: ...
    @overload
    async def fire(
        self, point: Literal[HookPoint.AFTER_COMMIT], ctx: RequestContext, changes: list[Change], /
    ) -> None: ...
    @overload
    async def fire(
        self,
        point: Literal[HookPoint.BEFORE_SEARCH],
        ctx: RequestContext,
        resource_type: str,
        pairs: list[tuple[str, str]],
        /,
    ) -> None: ...
    @overload
    async def fire(
        self, point: Literal[HookPoint.BEFORE_SHOW], ctx: RequestContext, shown: Sequence[Shown], /
    ) -> None: ...
    async def fire(self, point: HookPoint, ctx: RequestContext, *args: Any) -> None:
        for hook in self._listeners.get(point, ()):
            await hook(ctx, *args)
