"""Turns one referral event into numbered notification events for the subscriptions it matches.

Matching uses the search engine itself (no second implementation of the search grammar): the
focus resource is mirrored into the notifier's own store (an internal type, not served), and a
subscription matches when ``Type?<topic criteria>&<its filters>&_id=<focus id>`` finds it. For a
delete, the match is made against the last mirrored version before the mirror is removed.
Everything happens in the intake's transaction: the event is numbered if and only if it is
recorded.

No subscription can fail the intake for the others: the matches run under a savepoint, and if
one fails they run again one savepoint each; a subscription whose filters cannot be evaluated
(larger than the limits, refused by the parser, refused by the database) goes to ``error`` with
the reason and is left out of matching until its client rewrites it.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any
from urllib.parse import parse_qsl, unquote

import orjson
from closedloop.auth.organizations import Party, may_read
from closedloop.errors import FhirError
from closedloop.fhir.instant import now_us
from closedloop.fhir.server import FhirServer
from closedloop.fhir.storage.repository import UnitOfWork
from closedloop.observability.tracing import current_traceparent, trace_id_of
from sqlalchemy import select, update

from notifier.subscriptions.spec import MAX_FILTER_CRITERIA, MAX_FILTER_VALUES, filter_size_problem
from notifier.subscriptions.status import describe_failure, record_status
from notifier.subscriptions.tables import notification_events, subscription_state
from notifier.topics import TOPICS

log = logging.getLogger("notifier.matching")

COUNTING = ("requested", "active", "error")  # an errored subscription keeps counting events


_KINDS = {
    "accepted": "referral-accepted",
    "rejected": "referral-declined",
    "completed": "referral-completed",
}


FOLLOW_UP = ("urn:closedloop:CodeSystem:task-code", "follow-up")


def _is_followup(task: dict[str, Any]) -> bool:
    codings = (task.get("code") or {}).get("coding") or []
    return any(
        isinstance(c, dict) and (c.get("system"), c.get("code")) == FOLLOW_UP for c in codings
    )


def _followup_kind(task: dict[str, Any], previous: dict[str, Any] | None) -> str | None:
    """referral-api's follow-up of an unanswered referral: raised, then escalated (urgent)."""
    if previous is None:
        return "referral-stalled" if task.get("status") == "requested" else None
    if task.get("priority") == "urgent" and previous.get("priority") != "urgent":
        return "referral-escalated"
    return None


def message_kind(event: dict[str, Any]) -> str | None:
    """Which human message (if any) a Task change calls for: a new referral, or a move to
    accepted, declined (rejected) or completed; for a follow-up Task, that a referral stalled
    or was escalated."""
    if event["resourceType"] != "Task" or not isinstance(event.get("resource"), dict):
        return None
    if _is_followup(event["resource"]):
        previous = event.get("previous")
        return _followup_kind(event["resource"], previous if isinstance(previous, dict) else None)
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


def _oversized(criteria: str) -> str | None:
    """Filters stored before the limits (or written around the API) may be larger than they
    allow: measured on their text before any SQL is built (most are too short to need it)."""
    lines = criteria.splitlines()
    if (
        unquote(criteria).count(",") < MAX_FILTER_VALUES
        and criteria.count("&") + len(lines) <= MAX_FILTER_CRITERIA
    ):
        return None
    problem = filter_size_problem([parse_qsl(line, keep_blank_values=True) for line in lines])
    return f"Filters too large: {problem}" if problem else None


Candidate = tuple[str, str, str]  # subscription id, the topic's criteria, its filters


async def _match_all(
    server: FhirServer, uow: UnitOfWork, rtype: str, rid: str, candidates: list[Candidate]
) -> tuple[list[str], dict[str, str]]:
    """The subscriptions the focus matches, and those whose filters failed (with why)."""
    failed: dict[str, str] = {}
    runnable = []
    for sub_id, current, criteria in candidates:
        try:
            problem = _oversized(criteria)
        except Exception as exc:  # whatever it is, it is this subscription's
            problem = describe_failure(exc)
        if problem:
            failed[sub_id] = problem
        else:
            runnable.append((sub_id, current, criteria))
    try:  # the usual case: one savepoint for them all
        async with uow.conn.begin_nested():
            hits = [
                sub_id
                for sub_id, current, criteria in runnable
                if await _matches(server, uow, rtype, rid, current, criteria)
            ]
        return hits, failed
    except Exception:  # found below, one savepoint each
        pass
    hits = []
    for sub_id, current, criteria in runnable:
        try:
            async with uow.conn.begin_nested():
                if await _matches(server, uow, rtype, rid, current, criteria):
                    hits.append(sub_id)
        except Exception as exc:  # this subscription's filters, not the intake's
            failed[sub_id] = describe_failure(exc)
    return hits, failed


async def _set_aside(server: FhirServer, uow: UnitOfWork, sub_id: str, problem: str) -> None:
    await record_status(
        server,
        uow,
        sub_id,
        "error",
        f"The subscription's filters could not be evaluated, so it matches no events until it "
        f"is updated with working filters: {problem}",
        filters_failed=True,
    )
    log.warning("subscription filters failed to evaluate", extra={"subscription": sub_id})


def event_traceparent(event: dict[str, Any]) -> str | None:
    """The trace a notification of ``event`` continues: this intake request's span when it is
    in the event's trace (one event per post), else the event's own ``traceparent`` (an event
    further down a batch, whose post continued the first event's trace)."""
    current = current_traceparent()
    sent = event.get("traceparent")
    sent = sent if isinstance(sent, str) and trace_id_of(sent) else None
    if sent is None or trace_id_of(current) == trace_id_of(sent):
        return current or sent
    return sent


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
                select(
                    state.subscription_id,
                    state.topic,
                    state.criteria,
                    state.owner_subject,
                    state.owner_role,
                    state.owner_organization,
                )
                .where(
                    state.topic.in_(list(topics)),
                    state.status.in_(COUNTING),
                    state.filters_failed.is_(False),
                )
                .order_by(state.subscription_id)
            )
        ).all()
        if topics
        else []
    )
    # a subscription is told only what its owner may read (closedloop.auth.organizations)
    focus = resource if isinstance(resource, dict) else event.get("previous")
    readable = [
        row
        for row in subs
        if may_read(Party(row.owner_subject, row.owner_role, row.owner_organization), rtype, focus)
    ]
    hits, failed = await _match_all(
        server,
        uow,
        rtype,
        rid,
        [(row.subscription_id, topics[row.topic].current, row.criteria) for row in readable],
    )
    for sub_id, problem in failed.items():
        await _set_aside(server, uow, sub_id, problem)
    now = now_us()
    traceparent = event_traceparent(event) if hits else None
    for sub_id in hits:
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
                traceparent=traceparent,
            )
        )
    if interaction == "delete":
        with contextlib.suppress(FhirError):  # never mirrored: nothing to remove
            await server.repo.delete(uow, rtype, rid)
    return len(hits)
