"""Narrowing: what the current caller may see, as SQL conditions on the ``resources`` table.

A service with an access policy (referral-api's organizations) gives the server a
``Narrower``: for a request context and a resource type it answers ``None`` (no limit) or the
conditions a visible resource meets. The REST layer puts the request's narrowing in a context
variable when it opens the request; the search engine ANDs it into every statement it runs for
that request: the page, the total, the conditional-interaction matcher and the ``_include`` /
``_revinclude`` rows. So paging totals stay right (nothing is filtered after the fact) and every
way into the API (full path, fast path, batch and transaction entries) is narrowed the same.
Work outside a request (background workers, the ``SYSTEM`` context) sets none and sees all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import and_, case, select

from closedloop import errors
from closedloop.context import RequestContext
from closedloop.fhir.storage.tables import resources

Conditions = list[Any] | None
Narrower = Callable[[RequestContext, str], Conditions]
"""(context, resource type) -> None (sees all of that type) or the SQL conditions on
``closedloop.fhir.storage.tables.resources`` a resource it may see meets (``[false()]``:
none)."""

Narrowing = Callable[[str], Conditions]

_CURRENT: ContextVar[Narrowing | None] = ContextVar("closedloop_narrowing", default=None)


def current(resource_type: str) -> Conditions:
    """The current request's conditions for ``resource_type`` (None: no limit)."""
    narrowing = _CURRENT.get()
    return None if narrowing is None else narrowing(resource_type)


def active() -> bool:
    return _CURRENT.get() is not None


def begin(narrower: Narrower | None, ctx: RequestContext) -> None:
    """Narrow the rest of this request (its task and what it awaits) for ``ctx``."""
    if narrower is None:
        _CURRENT.set(None)
        return

    def narrowing(resource_type: str) -> Conditions:
        return narrower(ctx, resource_type)

    _CURRENT.set(narrowing)


@contextmanager
def unnarrowed() -> Iterator[None]:
    """Run a block as the system (e.g. a policy looking up what the caller may not see)."""
    token = _CURRENT.set(None)
    try:
        yield
    finally:
        _CURRENT.reset(token)


class InstanceGuard:
    """The ``request`` hook that makes a server's narrowing hold for single resources too.

    A resource the caller may not see is "not known" (404, as if it did not exist, so nothing
    is learnt about other organizations' data) on every instance interaction: read, vread,
    its history, update, patch, delete and operations on it. History across resources (type
    or system level) is answered only to callers not narrowed for the types it covers (403).
    """

    def __init__(self, db: Any, narrower: Narrower, served_types: list[str]) -> None:
        self.db = db
        self.narrower = narrower
        self.served_types = served_types

    async def on_request(self, ctx: RequestContext, interaction: Any, /) -> None:
        if interaction.name in ("history-type", "history-system"):
            types = [interaction.resource_type] if interaction.resource_type else self.served_types
            if any(self.narrower(ctx, t) is not None for t in types):
                raise errors.forbidden(
                    f"{interaction.name} is answered to unrestricted callers only; search, or "
                    "read each resource's own history, instead"
                )
            return
        if interaction.resource_type is None or interaction.resource_id is None:
            return
        conds = self.narrower(ctx, interaction.resource_type)
        if conds is None:
            return
        r = resources.c
        visible = case((and_(*conds), True), else_=False)
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(visible).where(
                        r.resource_type == interaction.resource_type,
                        r.id == interaction.resource_id,
                    )
                )
            ).first()
        if row is None:
            return  # nothing there: a create by PUT, or the engine's own 404
        if not row[0]:
            raise errors.not_found(
                f"{interaction.resource_type}/{interaction.resource_id} is not known"
            )
