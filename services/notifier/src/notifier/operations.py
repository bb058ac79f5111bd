"""``$status`` (type and instance level) and ``$events`` on Subscription, served from the
stored state and event log (Subscriptions Backport IG 1.1.0)."""

from __future__ import annotations

from urllib.parse import parse_qsl

import orjson
from closedloop import errors
from closedloop.fhir.instant import format_instant, now_us
from closedloop.fhir.rest.negotiation import fhir_response, parse_json, pretty, read_body
from closedloop.fhir.rest.openapi.described import (
    OperationDescription,
    OperationParameter,
    described,
)
from closedloop.fhir.rest.routes import check_type, context
from closedloop.fhir.search.limits import whole_number
from fastapi import Request, Response
from sqlalchemy import select

from notifier.delivery.bundles import StoredEvent, notification_bundle, status_parameters
from notifier.subscriptions.ownership import owned_by
from notifier.subscriptions.spec import read_spec
from notifier.subscriptions.tables import notification_events, subscription_state


def _not_parameters() -> errors.FhirError:
    return errors.invalid("The body must be a Parameters resource", cl_code="CL-8420")


async def _params(request: Request) -> list[tuple[str, str]]:
    """The query's parameters, then those of a POSTed Parameters body (JSON): any other
    shape of body is a 400, never an error of ours."""
    pairs = parse_qsl(request.url.query, keep_blank_values=True)
    if request.method == "POST":
        body = await read_body(request, 1_000_000)
        if body.strip():
            try:
                parameters = parse_json(body)  # also refuses NUL characters and deep nesting
            except errors.FhirError:
                raise _not_parameters() from None
            if not isinstance(parameters, dict) or parameters.get("resourceType") not in (
                None,
                "Parameters",
            ):
                raise _not_parameters()
            listed = parameters.get("parameter") or []
            if not isinstance(listed, list):
                raise _not_parameters()
            for p in listed:
                if not isinstance(p, dict) or not isinstance(p.get("name"), str):
                    raise _not_parameters()
                value = next((v for k, v in p.items() if k.startswith("value")), None)
                if value is not None:
                    pairs.append((p["name"], str(value)))
    return pairs


def _focus_base(request: Request) -> str:
    return str(request.app.state.focus_base)


@described(
    OperationDescription(
        "The delivery status of Subscriptions (all, or those named by id)",
        resource_types=("Subscription",),
        methods=("GET", "POST"),
        parameters=(
            OperationParameter("id", "Subscription id (type level; may repeat)"),
            OperationParameter("status", "Only subscriptions in this status"),
        ),
        response="Bundle",
        errors=(400, 404),
        definition="http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-status",
    )
)
async def status(request: Request, resource_type: str, resource_id: str | None) -> Response:
    server = check_type(request, resource_type)
    # a list of subscriptions' states is a search; one subscription's, a read
    ctx = await context(
        request,
        "operation",
        resource_type,
        resource_id,
        operation="status",
        like="read" if resource_id else "search-type",
    )
    if resource_type != "Subscription":
        raise errors.not_supported("$status is defined on Subscription", status=404)
    pairs = await _params(request)
    ids = [resource_id] if resource_id else [v for k, v in pairs if k == "id"]
    statuses = {v for k, v in pairs if k == "status"}
    s = subscription_state.c
    stmt = select(subscription_state)
    own = owned_by(ctx)  # another organization's subscriptions are not listed, nor known
    if own is not None:
        stmt = stmt.where(own)
    if ids:
        stmt = stmt.where(s.subscription_id.in_(ids))
    async with server.db.read() as conn:
        rows = (await conn.execute(stmt.order_by(s.subscription_id).limit(1000))).all()
    if resource_id and not rows:
        raise errors.not_found(f"Subscription/{resource_id} is not known")
    entries = []
    for row in rows:
        if statuses and row.status not in statuses:
            continue
        url = f"{ctx.base_url}/Subscription/{row.subscription_id}"
        params = status_parameters(
            url,
            row.topic,
            row.status,
            "query-status",
            row.events_count,
            [],
            _focus_base(request),
            "id-only",
            row.error,
        )
        entries.append(
            {"fullUrl": f"urn:uuid:{params['id']}", "resource": params, "search": {"mode": "match"}}
        )
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(entries),
        "timestamp": format_instant(now_us()),
        "entry": entries,
    }
    return fhir_response(orjson.dumps(bundle), indent=pretty(request))


def _number(pairs: list[tuple[str, str]], name: str) -> int | None:
    values = [v for k, v in pairs if k == name]
    if not values:
        return None
    return whole_number(name, values[0], cl_code="CL-8421")


@described(
    OperationDescription(
        "The notification events of a Subscription, by event number",
        resource_types=("Subscription",),
        type_level=False,
        methods=("GET", "POST"),
        parameters=(
            OperationParameter(
                "eventsSinceNumber", "First event number", {"type": "integer", "minimum": 0}
            ),
            OperationParameter(
                "eventsUntilNumber", "Last event number", {"type": "integer", "minimum": 0}
            ),
            OperationParameter(
                "content",
                "Payload of the events",
                {"type": "string", "enum": ["empty", "id-only", "full-resource"]},
            ),
        ),
        response="Bundle",
        errors=(400, 404, 410),
        definition="http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-events",
    )
)
async def events(request: Request, resource_type: str, resource_id: str | None) -> Response:
    server = check_type(request, resource_type)
    ctx = await context(
        request, "operation", resource_type, resource_id, operation="events", like="read"
    )
    if resource_type != "Subscription" or resource_id is None:
        raise errors.not_supported("$events is an instance operation on Subscription", status=404)
    pairs = await _params(request)
    since, until = _number(pairs, "eventsSinceNumber"), _number(pairs, "eventsUntilNumber")
    content = next((v for k, v in pairs if k == "content"), None)
    stored = await server.repo.read("Subscription", resource_id)
    spec = read_spec(
        orjson.loads(stored.content or "{}"), server.search, request.app.state.endpoints
    )
    payload = content or spec.payload
    if payload not in ("empty", "id-only", "full-resource"):
        raise errors.invalid("content must be empty, id-only or full-resource", cl_code="CL-8422")
    s, e = subscription_state.c, notification_events.c
    stmt = select(notification_events).where(e.subscription_id == resource_id)
    if since is not None:
        stmt = stmt.where(e.event_number >= since)
    if until is not None:
        stmt = stmt.where(e.event_number <= until)
    async with server.db.read() as conn:
        state = (
            await conn.execute(select(subscription_state).where(s.subscription_id == resource_id))
        ).first()
        rows = (await conn.execute(stmt.order_by(e.event_number).limit(1000))).all()
    if state is None:
        raise errors.not_found(f"Subscription/{resource_id} has no delivery state")
    stored_events = [
        StoredEvent(
            r.event_number, r.focus_type, r.focus_id, r.interaction, r.occurred_at, r.resource
        )
        for r in rows
    ]
    bundle = notification_bundle(
        f"{ctx.base_url}/Subscription/{resource_id}",
        state.topic,
        state.status,
        "query-event",
        state.events_count,
        stored_events,
        _focus_base(request),
        payload,
        state.error,
    )
    return fhir_response(orjson.dumps(bundle), indent=pretty(request))
