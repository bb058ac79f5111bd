"""``GET /fhir/AuditEvent`` and ``GET /fhir/AuditEvent/<id>``: the audit trail as FHIR R4
AuditEvents, for admins (role ``admin`` and a scope covering ``AuditEvent`` read/search, e.g.
``system/AuditEvent.rs``); with authorization off, for anyone who can reach the service.

Search parameters: ``date`` (``ge``/``gt``/``le``/``lt``/``eq`` prefixes, repeatable),
``agent`` (the token's subject or client id), ``entity`` (``Type/id``), ``entity-type``,
``action`` (C R U D E), ``subtype`` (the interaction), ``outcome`` (0 or 4), ``_count``; newest
first, with a ``next`` link. Anything else is a 400 (a typo must not widen an audit query).

``search_bundle`` and ``read_event`` are the same without the FHIR server around them, for a
service that checks its callers itself (the authorization server's own trail).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Select, select

from closedloop import errors
from closedloop.audit import security
from closedloop.audit.tables import audit_entities, audit_events
from closedloop.auth.roles import ADMIN
from closedloop.context import RequestContext
from closedloop.db.engine import Database
from closedloop.fhir.instant import format_instant, parse_instant
from closedloop.fhir.rest.negotiation import fhir_response, pretty
from closedloop.fhir.rest.routes import context, server_of

router = APIRouter()
PARAMS = frozenset(
    {
        "date",
        "agent",
        "entity",
        "entity-type",
        "action",
        "subtype",
        "outcome",
        "_count",
        "_before",
        "_format",
        "_pretty",
    }
)
PREFIXES = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<", "eq": "="}
EVENT_TYPE = {
    "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
    "code": "rest",
    "display": "RESTful Operation",
}
RESTFUL = "http://hl7.org/fhir/restful-interaction"


def _require_admin(ctx: RequestContext) -> None:
    if not ctx.anonymous and ctx.role != ADMIN:
        raise errors.forbidden("The audit trail is for admins (a token with role admin)")


def render(row: Any, entities: list[tuple[str, str]]) -> dict[str, Any]:
    reason = next((i for t, i in entities if t == security.REASON), None)
    entities = [(t, i) for t, i in entities if t != security.REASON]
    agents: list[dict[str, Any]] = [
        {
            "type": {"text": row.agent_role or ("anonymous" if row.agent_subject is None else "")},
            "who": {"identifier": {"value": row.agent_subject or "anonymous"}},
            **({"altId": row.agent_client} if row.agent_client else {}),
            "requestor": True,
        }
    ]
    if row.agent_organization:
        agents.append({"who": {"reference": row.agent_organization}, "requestor": False})
    is_security = security.is_security(row.subtype)
    described = f"HTTP {row.status}" if row.status else None
    if reason:
        described = f"{reason} ({described})" if described else reason
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": row.id,
        "type": security.SUBTYPES[row.subtype] if is_security else EVENT_TYPE,
        "subtype": [
            {"system": security.SUBTYPE_SYSTEM if is_security else RESTFUL, "code": row.subtype}
        ],
        "action": row.action,
        "recorded": format_instant(row.recorded),
        "outcome": row.outcome,
        **({"outcomeDesc": described} if described else {}),
        "agent": agents,
        "source": {"observer": {"display": row.source}},
    }
    what = [security.entity(t, i) for t, i in entities]
    if not what and row.resource_type:
        what = [{"what": {"display": row.resource_type}}]
    if row.entity_count > len(entities):
        what.append({"description": f"{row.entity_count - len(entities)} more"})
    if what:
        event["entity"] = what
    return event


def _where(stmt: Select[Any], pairs: list[tuple[str, str]]) -> Select[Any]:
    e, n = audit_events.c, audit_entities.c
    for name, value in pairs:
        if name not in PARAMS:
            raise errors.invalid(
                f"Unknown AuditEvent search parameter {name!r}: use "
                + ", ".join(sorted(PARAMS - {"_before", "_format", "_pretty"})),
                cl_code="CL-1450",
            )
        if name == "date":
            op, text = ("eq", value) if value[:2] not in PREFIXES else (value[:2], value[2:])
            at = parse_instant(text if "T" in text else f"{text}T00:00:00Z")
            if at is None:
                raise errors.invalid(
                    f"date {value!r} is not a FHIR date or instant", cl_code="CL-1451"
                )
            stmt = stmt.where(e.recorded.op(PREFIXES[op])(at))
        elif name == "agent":
            stmt = stmt.where((e.agent_subject == value) | (e.agent_client == value))
        elif name == "entity":
            rtype, _, rid = value.rpartition("/")
            rtype = rtype.rsplit("/", 1)[-1]
            stmt = stmt.where(
                e.id.in_(select(n.event_id).where(n.entity_type == rtype, n.entity_id == rid))
            )
        elif name == "entity-type":
            stmt = stmt.where(
                e.id.in_(select(n.event_id).where(n.entity_type == value))
                | (e.resource_type == value)
            )
        elif name in ("action", "subtype", "outcome"):
            column = {"action": e.action, "subtype": e.subtype, "outcome": e.outcome}[name]
            stmt = stmt.where(column.in_(value.split(",")))
        elif name == "_before":
            stmt = stmt.where(e.seq < int(value)) if value.isdigit() else stmt
    return stmt


async def _entities(conn: Any, ids: list[str]) -> dict[str, list[tuple[str, str]]]:
    n = audit_entities.c
    found: dict[str, list[tuple[str, str]]] = {}
    if ids:
        rows = await conn.execute(
            select(n.event_id, n.entity_type, n.entity_id).where(n.event_id.in_(ids))
        )
        for event_id, t, i in rows:
            found.setdefault(event_id, []).append((t, i))
    return found


async def search_bundle(
    db: Database, pairs: list[tuple[str, str]], base: str, self_url: str
) -> dict[str, Any]:
    """The searchset Bundle for ``pairs`` (the query); ``base`` is the AuditEvent URL."""
    count_text = next((v for k, v in pairs if k == "_count"), "50")
    if not count_text.isdigit() or not 0 < int(count_text) <= 1000:
        raise errors.invalid("_count must be a whole number from 1 to 1000", cl_code="CL-1452")
    count = int(count_text)
    e = audit_events.c
    stmt = _where(select(audit_events), pairs).order_by(e.seq.desc()).limit(count + 1)
    async with db.read() as conn:
        rows = list((await conn.execute(stmt)).all())
        more = len(rows) > count
        rows = rows[:count]
        entities = await _entities(conn, [r.id for r in rows])
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": [{"relation": "self", "url": self_url}],
        "entry": [
            {
                "fullUrl": f"{base}/{r.id}",
                "resource": render(r, entities.get(r.id, [])),
                "search": {"mode": "match"},
            }
            for r in rows
        ],
    }
    if more:
        kept = [(k, v) for k, v in pairs if k != "_before"] + [("_before", str(rows[-1].seq))]
        bundle["link"].append({"relation": "next", "url": f"{base}?{urlencode(kept)}"})
    return bundle


async def read_event(db: Database, event_id: str) -> dict[str, Any]:
    e = audit_events.c
    async with db.read() as conn:
        row = (await conn.execute(select(audit_events).where(e.id == event_id))).first()
        entities = await _entities(conn, [event_id]) if row else {}
    if row is None:
        raise errors.not_found(f"AuditEvent/{event_id} is not known")
    return render(row, entities.get(event_id, []))


@router.get("/fhir/AuditEvent", include_in_schema=False)
async def search_audit(request: Request) -> Response:
    ctx = await context(request, "search-type", "AuditEvent")
    _require_admin(ctx)
    pairs = list(request.query_params.multi_items())
    bundle = await search_bundle(
        server_of(request).db, pairs, f"{ctx.base_url}/AuditEvent", str(request.url)
    )
    return fhir_response(orjson.dumps(bundle), indent=pretty(request))


@router.get("/fhir/AuditEvent/{event_id}", include_in_schema=False)
async def read_audit(request: Request, event_id: str) -> Response:
    ctx = await context(request, "read", "AuditEvent", event_id)
    _require_admin(ctx)
    event = await read_event(server_of(request).db, event_id)
    return fhir_response(orjson.dumps(event), indent=pretty(request))
