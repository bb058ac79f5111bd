"""Stop a request's work when its client goes away.

An ASGI server does not cancel the application when the client disconnects: it only reports
``http.disconnect`` to the next ``receive()``. A search the client gave up on would run to its
end (on PostgreSQL a backend kept busy for minutes after the client left), so the work runs
while ``receive`` is watched, and a disconnect cancels it: the database driver then cancels the
running statement (asyncpg sends PostgreSQL a cancel request; ``Database.read`` interrupts
SQLite).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeVar

from closedloop import errors
from closedloop.db.engine import Stop, run_stoppable

T = TypeVar("T")
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]

CLIENT_CLOSED = 499  # nginx's status for "client closed request": only the access log sees it
_WATCH_AFTER = 0.05  # seconds: work done sooner never pays for a watcher task (~25 µs)


async def unless_disconnected(receive: Receive, work: Awaitable[T]) -> T:
    """``await work``, stopped if the client disconnects first (then a 499 FhirError).

    The request body must have been read already: the watcher consumes what ``receive``
    delivers until the disconnect.
    """
    loop = asyncio.get_running_loop()

    def arm(stop: Stop) -> Callable[[], None]:
        watcher: asyncio.Task[None] | None = None

        async def watch() -> None:
            try:
                while (await receive())["type"] != "http.disconnect":
                    pass
            except Exception:  # a receive that fails tells nothing about the client
                return
            stop(_client_closed())

        def start_watching() -> None:
            nonlocal watcher
            watcher = loop.create_task(watch())

        later = loop.call_later(_WATCH_AFTER, start_watching)

        def disarm() -> None:
            later.cancel()
            if watcher is not None:
                watcher.cancel()

        return disarm

    return await run_stoppable(work, arm)


def _client_closed() -> errors.FhirError:
    return errors.FhirError(
        CLIENT_CLOSED,
        [
            errors.Issue(
                "error",
                "incomplete",
                "The client closed the connection; the search was stopped",
                (),
                "CL-3463",
            )
        ],
    )
