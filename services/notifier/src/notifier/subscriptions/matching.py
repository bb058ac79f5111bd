"""Turns one referral event into numbered notification events for the subscriptions it matches.

Matching uses the search engine itself (no second implementation of the search grammar): the
focus resource is mirrored into the notifier's own store (an internal type, not served), and a
subscription matches when ``Type?<topic criteria>&<its filters>&_id=<focus id>`` finds it. For a
delete, the match is made against the last mirrored version before the mirror is removed.
Everything happens in the intake's transaction: the event is numbered if and only if it is
recorded.
"""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
from closedloop.errors import FhirError
from closedloop.fhir.instant import now_us
from closedloop.fhir.server import FhirServer
from closedloop.fhir.storage.repository import UnitOfWork
from sqlalchemy import select, update

from notifier.subscriptions.tables import notification_events, subscription_state
from notifier.topics import TOPICS

COUNTING = ("requested", "active", "error")  # an errored subscription keeps counting events


_KINDS = {
    "accepted": "referral-accepted",
    "rejected": "referral-declined",
    "completed": "referral-completed",
}


def message_kind(event: dict[str, Any]) -> str | None:
    """Which human message (if any) a Task change calls for: a new referral, or a move to
    accepted, declined (rejected) or completed."""
    if event["resourceType"] != "Task" or not isinstance(event.get("resource"), dict):
        return None
    status = event["resource"].get("status")
    before = (event.get("previous") or {}).get("status")
    if status == before:
        return None
    if status == "requested" and before in (None, "draft"):
        return "referral-new"
    return _KINDS.get(str(status))


async def _matches(
    server: FhirServer, uow: UnitOfWork, rtype: str, rid: str, current: str, criteria: str
) -> bool:
    parts = [p for p in (current, *criteria.splitlines(), f"_id={rid}") if p]
    return bool(await server.search.match_ids(uow.conn, rtype, "&".join(parts)))


async def enqueue(server: FhirServer, uow: UnitOfWork, event: dict[str, Any]) -> int:
    """Record notification events for ``event``; returns how many subscriptions matched."""
    rtype, rid, interaction = event["resourceType"], event["resourceId"], event["interaction"]
    topics = {
        url: t
        for url, t in TOPICS.items()
        if t.resource_type == rtype and interaction in t.interactions
    }
    resource = event.get("resource")
    if interaction != "delete" and isinstance(resource, dict):
        await server.repo.update(
            uow,
            rtype,
            rid,
            {
                **resource,
                "meta": {
                    k: v
                    for k, v in (resource.get("meta") or {}).items()
                    if k not in ("versionId", "lastUpdated")
                },
            },
        )
    state = subscription_state.c
    subs = (
        (
            await uow.conn.execute(
                select(state.subscription_id, state.topic, state.criteria)
                .where(state.topic.in_(list(topics)), state.status.in_(COUNTING))
                .order_by(state.subscription_id)
            )
        ).all()
        if topics
        else []
    )
    matched = 0
    now = now_us()
    for sub_id, topic_url, criteria in subs:
        if not await _matches(server, uow, rtype, rid, topics[topic_url].current, criteria):
            continue
        number = (
            await uow.conn.execute(
                update(subscription_state)
                .where(state.subscription_id == sub_id)
                .values(events_count=state.events_count + 1, next_due_at=now)
                .returning(state.events_count)
            )
        ).scalar_one()
        await uow.conn.execute(
            notification_events.insert().values(
                subscription_id=sub_id,
                event_number=number,
                focus_type=rtype,
                focus_id=rid,
                interaction=interaction,
                occurred_at=now,
                attempts=0,
                next_attempt_at=now,
                resource=orjson.dumps(resource).decode() if isinstance(resource, dict) else None,
                message_kind=message_kind(event),
            )
        )
        matched += 1
    if interaction == "delete":
        with contextlib.suppress(FhirError):  # never mirrored: nothing to remove
            await server.repo.delete(uow, rtype, rid)
    return matched
