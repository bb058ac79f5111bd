"""Named hook points where policy, audit, business rules and the outbox plug in.

Storage and the REST layer fire these; nothing in storage imports the code that listens. A hook is
an async callable; ``before_*`` hooks may raise ``FhirError`` to refuse the interaction (the
transaction is rolled back); ``validate`` hooks hold profile rules (``$validate`` runs them too);
``before_commit`` hooks receive the unit of work, so they can write rows (an outbox) or more
resources in the same transaction; ``after_commit`` hooks run once data is durable.
``before_transaction`` hooks see the writes a request is about to make before any transaction
opens: slow checks (another service over HTTP) belong there, never while locks are held.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from closedloop.context import RequestContext
from closedloop.errors import Issue


class HookPoint(StrEnum):
    REQUEST = "request"  # (ctx, interaction: str, resource_type: str | None)
    BEFORE_TRANSACTION = "before_transaction"  # (ctx, planned: list[PlannedWrite])
    VALIDATE = "validate"  # (ctx, resource_type, resource, report: list[Issue]); raise to refuse
    BEFORE_CREATE = "before_create"  # (ctx, change: Change)
    BEFORE_UPDATE = "before_update"  # (ctx, change: Change)  change.previous holds the old body
    BEFORE_DELETE = "before_delete"  # (ctx, change: Change)
    BEFORE_COMMIT = "before_commit"  # (ctx, uow): uow.conn, uow.changes; may write more
    AFTER_COMMIT = "after_commit"  # (ctx, changes: list[Change])
    BEFORE_SEARCH = "before_search"  # (ctx, resource_type: str, query)
    BEFORE_SHOW = "before_show"  # (ctx, resource: dict)


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
class PlannedWrite:
    """A create or update a request is about to make, as the client sent it (before any
    transaction: ids from ``urn:uuid`` references are not resolved yet, and a conditional
    update's id is not known)."""

    interaction: str  # create | update
    resource_type: str
    resource_id: str | None  # None for a create, or an update by criteria
    resource: dict[str, Any]


Hook = Callable[..., Awaitable[Any]]


@dataclass
class Hooks:
    """A registry of listeners per hook point; one per app."""

    _listeners: dict[HookPoint, list[Hook]] = field(default_factory=dict)

    def register(self, point: HookPoint, hook: Hook) -> Hook:
        self._listeners.setdefault(point, []).append(hook)
        return hook

    def has(self, point: HookPoint) -> bool:
        return bool(self._listeners.get(point))

    async def fire(self, point: HookPoint, ctx: RequestContext, *args: Any) -> None:
        for hook in self._listeners.get(point, ()):
            await hook(ctx, *args)
