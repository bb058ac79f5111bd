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

from closedloop.context import RequestContext

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
