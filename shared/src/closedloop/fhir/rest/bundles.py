"""batch and transaction Bundles posted to the base (http://hl7.org/fhir/R4/http.html#transaction).

A transaction runs every entry in one unit of work: any failing entry raises and nothing is
stored. Entries run in the spec's order (DELETE, POST, PUT/PATCH, GET) and answer in the
order they were sent. ``urn:uuid:`` fullUrls are resolved before anything is written: each POST
gets its id first (or the id of the resource its If-None-Exist matched), then every reference to
a ``urn:uuid:`` in the Bundle is rewritten to ``Type/id``. A batch runs each entry on its own.
"""

from __future__ import annotations

import base64
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

import orjson

from closedloop import errors
from closedloop.context import RequestContext
from closedloop.errors import FhirError, Issue, information, operation_outcome
from closedloop.fhir.rest import steps
from closedloop.fhir.rest.guards import check_escapes
from closedloop.fhir.rest.prefer import Preferences, parse_etag
from closedloop.fhir.search.execution import ConnectionExecutor
from closedloop.fhir.search.limits import version_number
from closedloop.fhir.server import FhirServer
from closedloop.fhir.storage.records import StoredResource, WriteResult
from closedloop.fhir.storage.repository import UnitOfWork
from closedloop.hooks import HookPoint, Interaction, PlannedWrite

log = logging.getLogger("closedloop.errors")

_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
_WRITES = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
_REASONS = {200: "OK", 201: "Created", 204: "No Content", 304: "Not Modified"}


@dataclass
class Entry:
    index: int
    method: str
    url: str
    resource: Any
    full_url: str | None
    if_none_exist: str | None
    if_match: str | None
    assigned_id: str | None = None  # for POST: the id it will get, or the one it matched
    matched: StoredResource | None = None
    response: dict[str, Any] = field(default_factory=dict)


def _entry_error(index: int, exc: FhirError) -> FhirError:
    """The same error, saying which entry failed."""
    issues = [
        Issue(
            i.severity,
            i.code,
            f"Bundle.entry[{index}]: {i.diagnostics}",
            tuple(
                f"Bundle.entry[{index}].resource.{e.split('.', 1)[1]}"
                if "." in e
                else f"Bundle.entry[{index}]"
                for e in i.expression
            )
            or (f"Bundle.entry[{index}]",),
            i.cl_code,
        )
        for i in exc.issues
    ]
    return FhirError(exc.status, issues, exc.headers)


def _parse_entries(bundle: Any) -> tuple[str, list[Entry]]:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise errors.invalid(
            "The base accepts only a Bundle of type batch or transaction",
            ("Bundle.resourceType",),
            cl_code="CL-4400",
        )
    kind = bundle.get("type")
    if kind not in ("batch", "transaction"):
        raise errors.invalid(
            f"Bundle.type must be batch or transaction, not {kind!r}",
            ("Bundle.type",),
            cl_code="CL-4401",
        )
    raw = bundle.get("entry") or []
    if not isinstance(raw, list):
        raise errors.invalid("Bundle.entry must be an array", ("Bundle.entry",), cl_code="CL-4402")
    entries = []
    for i, e in enumerate(raw):
        req = e.get("request") if isinstance(e, dict) else None
        if (
            not isinstance(req, dict)
            or req.get("method") not in _ORDER
            or not isinstance(req.get("url"), str)
            or not req["url"]
        ):
            raise errors.invalid(
                f"Bundle.entry[{i}].request needs a method (GET, POST, PUT, "
                "PATCH, DELETE) and a url",
                (f"Bundle.entry[{i}].request",),
                cl_code="CL-4403",
            )
        texts = {
            "fullUrl": e.get("fullUrl"),
            "request.ifNoneExist": req.get("ifNoneExist"),
            "request.ifMatch": req.get("ifMatch"),
        }
        for name, value in texts.items():
            if value is not None and not isinstance(value, str):
                raise errors.invalid(
                    f"Bundle.entry[{i}].{name} must be a string",
                    (f"Bundle.entry[{i}].{name}",),
                    cl_code="CL-4403",
                )
        method = req["method"]
        resource = e.get("resource")
        if method in ("POST", "PUT") and not isinstance(resource, dict):
            raise errors.invalid(
                f"Bundle.entry[{i}] ({method}) has no resource",
                (f"Bundle.entry[{i}].resource",),
                cl_code="CL-4404",
            )
        entries.append(
            Entry(
                i,
                method,
                req["url"].lstrip("/"),
                resource,
                e.get("fullUrl"),
                req.get("ifNoneExist"),
                req.get("ifMatch"),
            )
        )
    _refuse_duplicate_full_urls(entries)
    return kind, entries


def _refuse_duplicate_full_urls(entries: list[Entry]) -> None:
    """Every fullUrl names one entry (invariant bdl-7): with two, a reference to it would
    silently go to whichever was processed last."""
    seen: dict[str, int] = {}
    for entry in entries:
        if not isinstance(entry.full_url, str):
            continue
        first = seen.setdefault(entry.full_url, entry.index)
        if first != entry.index:
            raise errors.invalid(
                f"Bundle.entry[{entry.index}].fullUrl {entry.full_url!r} is also the fullUrl "
                f"of Bundle.entry[{first}]: each entry needs its own",
                (f"Bundle.entry[{entry.index}].fullUrl",),
                cl_code="CL-4407",
            )


_URN_PREFIXES = ("urn:uuid:", "urn:oid:")


def _refuse_unresolved_urns(entry: Entry, targets: set[str], kind: str) -> None:
    """A ``urn:uuid:``/``urn:oid:`` reference names an entry of its Bundle and nothing else
    (http://hl7.org/fhir/R4/bundle.html#references): one naming no entry that the transaction
    creates or updates (``targets``; none in a batch, whose entries never refer to each other)
    could never be resolved, so the entry is refused (422) rather than storing a reference to
    nowhere. Relative and absolute references to resources not in the Bundle are taken as they
    are, like on a plain create: the server does not enforce referential integrity (the target
    may live on another server, or be created later)."""
    if entry.method not in ("POST", "PUT") or not isinstance(entry.resource, dict):
        return
    stack: list[Any] = [entry.resource]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        ref = node.get("reference")
        if isinstance(ref, str) and ref.startswith(_URN_PREFIXES) and ref not in targets:
            raise errors.unprocessable(
                f"Bundle.entry[{entry.index}] refers to {ref}, which is the fullUrl of no "
                f"entry that this {kind} creates or updates",
                (f"Bundle.entry[{entry.index}].resource",),
                cl_code="CL-4408",
            )
        stack.extend(v for v in node.values() if isinstance(v, dict | list))


def _urn_targets(entries: list[Entry]) -> set[str]:
    """The fullUrls a transaction's references may name: those of its creates and updates."""
    return {
        e.full_url
        for e in entries
        if e.full_url and (e.method == "POST" or (e.method == "PUT" and "?" not in e.url))
    }


def _rewrite(value: Any, ids: dict[str, str]) -> Any:
    """Replace every ``urn:uuid`` (or other fullUrl) reference with its ``Type/id``."""
    if isinstance(value, dict):
        return {k: _rewrite(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite(v, ids) for v in value]
    if isinstance(value, str) and value in ids:
        return ids[value]
    return value


def _rewrite_url(url: str, ids: dict[str, str]) -> str:
    if "?" not in url:
        return ids.get(url, url)
    path, _, query = url.partition("?")
    pairs = [(k, ids.get(v, v)) for k, v in parse_qsl(query, keep_blank_values=True)]
    return path + "?" + "&".join(f"{k}={v}" for k, v in pairs)


def _status(code: int) -> str:
    return f"{code} {_REASONS.get(code, '')}".strip()


def _write_response(result: WriteResult | None, prefs: Preferences, base: str) -> dict[str, Any]:
    if result is None:
        return {"response": {"status": _status(204)}}
    stored = result.stored
    response: dict[str, Any] = {
        "status": _status(201 if result.created else 200),
        "etag": stored.etag,
        "lastModified": stored.last_updated_iso,
    }
    if result.created or result.changed:
        response["location"] = stored.location
    if result.warnings:
        response["outcome"] = operation_outcome(result.warnings)
    out: dict[str, Any] = {"response": response}
    if stored.content is not None and prefs.return_ == "representation":
        out = {
            "fullUrl": f"{base}/{stored.resource_type}/{stored.id}",
            "resource": orjson.Fragment(stored.content),
            **out,
        }
    elif prefs.return_ == "OperationOutcome":
        response["outcome"] = operation_outcome([information("ok")])
    return out


class EntryTarget(NamedTuple):
    """What an entry's ``request.url`` names."""

    rtype: str
    rid: str | None
    version: int | None
    query: str | None


class BundleProcessor:
    def __init__(self, server: FhirServer, ctx: RequestContext, prefs: Preferences) -> None:
        self.server = server
        self.repo = server.repo
        self.ctx = ctx
        self.prefs = prefs

    def _split(self, url: str, method: str) -> EntryTarget:
        """``Type``, ``Type/id`` or (GET only) ``Type/id/_history/vid``, each with an optional
        ``?query``; the type must be served here. Any other shape is refused rather than read
        as its first two segments (``PUT Task/x/_history/2`` must not update ``Task/x``)."""
        check_escapes(url.encode("utf-8", "surrogatepass"), "request.url")
        path, _, query = url.partition("?")
        if path.startswith(self.ctx.base_url + "/"):
            path = path[len(self.ctx.base_url) + 1 :]
        parts = path.split("/")
        rtype = parts[0]
        if not self.server.supports(rtype):
            raise errors.not_found(
                f"Resource type {rtype!r} is not supported by this service", cl_code="CL-1404"
            )
        rid = parts[1] if len(parts) > 1 and parts[1] else None
        version = None
        if len(parts) == 4 and parts[2] == "_history" and method == "GET":
            version = version_number(parts[3])
        elif len(parts) > 2:
            raise errors.invalid(
                f"request.url {url[:200]!r}: a {method} entry takes Type, Type/id or "
                "Type?criteria" + (", or Type/id/_history/vid" if method == "GET" else ""),
                cl_code="CL-2405",
            )
        return EntryTarget(rtype, rid, version, query or None)

    async def _authorize(self, entry: Entry, entries: list[Entry]) -> None:
        """Fire the ``request`` hook for the interaction the entry asks for, as a REST call
        would (policy refuses here: a transaction before anything runs, a batch entry alone)."""
        if not self.server.hooks.has(HookPoint.REQUEST):
            return
        url = entry.url
        if url.startswith(_URN_PREFIXES):  # names another entry of this Bundle: its type
            named = next((e for e in entries if e.full_url == url.partition("?")[0]), None)
            if named is not None and isinstance(named.resource, dict):
                url = str(named.resource.get("resourceType"))
        target = self._split(url, entry.method)
        if entry.method in _WRITES:
            name = _WRITES[entry.method]
        elif target.rid is None or target.rid == "_search":
            name = "search-type"
        else:
            name = "vread" if target.version is not None else "read"
        rid = None if target.rid == "_search" else target.rid
        await self.server.hooks.fire(
            HookPoint.REQUEST, self.ctx, Interaction(name, target.rtype, rid)
        )

    async def _plan(self, entry: Entry) -> None:
        """Show the ``before_transaction`` hooks what a POST or PUT entry will write."""
        if entry.method not in ("POST", "PUT") or not isinstance(entry.resource, dict):
            return
        target = self._split(entry.url, entry.method)
        interaction = "create" if entry.method == "POST" else "update"
        rid = target.rid if entry.method == "PUT" else None
        await self.repo.plan(
            self.ctx, [PlannedWrite(interaction, target.rtype, rid, entry.resource)]
        )

    async def _prepare_post(self, uow: UnitOfWork, entry: Entry, ids: dict[str, str]) -> None:
        rtype = self._split(entry.url, entry.method).rtype
        if entry.if_none_exist:
            check_escapes(entry.if_none_exist.encode("utf-8", "surrogatepass"), "ifNoneExist")
            criteria = _rewrite_url(entry.if_none_exist, ids)
            found = await self.repo.match_locked(uow.conn, rtype, criteria)
            if len(found) > 1:
                raise errors.precondition_failed(
                    f"ifNoneExist matched {len(found)} {rtype} resources"
                )
            if found:
                entry.assigned_id = found[0]
                entry.matched = await self.repo.read(rtype, found[0], uow.conn)
        if entry.assigned_id is None:
            entry.assigned_id = str(uuid.uuid4())
        if entry.full_url:
            ids[entry.full_url] = f"{rtype}/{entry.assigned_id}"

    async def _run(self, uow: UnitOfWork, entry: Entry, ids: dict[str, str]) -> dict[str, Any]:
        target = self._split(_rewrite_url(entry.url, ids), entry.method)
        rtype, rid, query = target.rtype, target.rid, target.query
        resource: Any = _rewrite(entry.resource, ids) if entry.resource is not None else None
        if_match = parse_etag(entry.if_match)
        if entry.method == "POST":
            if entry.matched is not None:
                return _write_response(
                    WriteResult(entry.matched, False, False), self.prefs, self.ctx.base_url
                )
            result = await self.repo.create(uow, rtype, resource, assigned_id=entry.assigned_id)
            return _write_response(result, self.prefs, self.ctx.base_url)
        if entry.method == "PUT":
            if rid is not None:
                return _write_response(
                    await self.repo.update(uow, rtype, rid, resource, if_match=if_match),
                    self.prefs,
                    self.ctx.base_url,
                )
            if query:
                return _write_response(
                    await self.repo.conditional_update(
                        uow, rtype, query, resource, if_match=if_match
                    ),
                    self.prefs,
                    self.ctx.base_url,
                )
            raise errors.invalid("PUT needs Type/id or Type?criteria", cl_code="CL-2402")
        if entry.method == "PATCH":
            if rid is None:
                raise errors.invalid("PATCH needs Type/id", cl_code="CL-2404")
            ops = _patch_ops(entry.resource)
            return _write_response(
                await self.repo.patch(uow, rtype, rid, ops, if_match=if_match),
                self.prefs,
                self.ctx.base_url,
            )
        if entry.method == "DELETE":
            if rid is not None:
                deleted = await self.repo.delete(uow, rtype, rid)
                response = {"status": _status(204)}
                if deleted is not None:
                    response["etag"] = deleted.stored.etag
                return {"response": response}
            if query:
                await self.repo.conditional_delete(uow, rtype, query)
                return {"response": {"status": _status(204)}}
            raise errors.invalid("DELETE needs Type/id or Type?criteria", cl_code="CL-2403")
        return await self._get(uow, target)

    async def _get(self, uow: UnitOfWork, target: EntryTarget) -> dict[str, Any]:
        rtype, rid, query = target.rtype, target.rid, target.query
        if rid is None or rid == "_search":
            pairs = parse_qsl(query or "", keep_blank_values=True)
            if self.server.hooks.has(HookPoint.BEFORE_SEARCH):
                await self.server.hooks.fire(HookPoint.BEFORE_SEARCH, self.ctx, rtype, pairs)
            text = await self.server.search.search_with(
                ConnectionExecutor(uow.conn),
                rtype,
                pairs,
                base_url=self.ctx.base_url,
                show=steps.shows(self.server, self.ctx),
            )
            return {"resource": orjson.Fragment(text), "response": {"status": _status(200)}}
        if target.version is not None:
            stored = await self.repo.vread(rtype, rid, target.version)
        else:
            stored = await self.repo.read(rtype, rid, uow.conn)
        await steps.show(self.server, self.ctx, steps.shown_of(stored))
        return {
            "resource": orjson.Fragment(stored.content or "null"),
            "response": {
                "status": _status(200),
                "etag": stored.etag,
                "lastModified": stored.last_updated_iso,
            },
        }

    async def transaction(self, entries: list[Entry]) -> list[dict[str, Any]]:
        targets = _urn_targets(entries)
        for entry in entries:
            _refuse_unresolved_urns(entry, targets, "transaction")
        ids: dict[str, str] = {}
        results: dict[int, dict[str, Any]] = {}
        ordered = sorted(entries, key=lambda e: _ORDER[e.method])
        for entry in entries:  # policy and slow checks first, no transaction open yet
            try:
                await self._authorize(entry, entries)
                await self._plan(entry)
            except FhirError as exc:
                raise _entry_error(entry.index, exc) from None
        async with self.repo.unit_of_work(self.ctx) as uow:
            for entry in entries:  # ids for PUT Type/id entries known from their URL
                if entry.method == "PUT" and entry.full_url and "?" not in entry.url:
                    ids[entry.full_url] = entry.url
            current = None
            try:
                for entry in ordered:
                    current = entry
                    if entry.method == "DELETE":
                        results[entry.index] = await self._run(uow, entry, ids)
                for entry in ordered:
                    current = entry
                    if entry.method == "POST":
                        await self._prepare_post(uow, entry, ids)
                for entry in ordered:
                    current = entry
                    if entry.method != "DELETE":
                        results[entry.index] = await self._run(uow, entry, ids)
            except FhirError as exc:
                assert current is not None
                raise _entry_error(current.index, exc) from None
        return [results[e.index] for e in entries]

    async def batch(self, entries: list[Entry]) -> list[dict[str, Any]]:
        out = []
        for entry in entries:
            try:
                _refuse_unresolved_urns(entry, set(), "batch")
                await self._authorize(entry, entries)
                await self._plan(entry)
                async with self.repo.unit_of_work(self.ctx) as uow:
                    if entry.method == "POST":
                        await self._prepare_post(uow, entry, {})
                    out.append(await self._run(uow, entry, {}))
            except FhirError as exc:
                out.append({"response": {"status": _status(exc.status), "outcome": exc.outcome}})
            except Exception as exc:  # only this entry fails; its work was rolled back
                log.error(
                    "unhandled error in a batch entry",
                    exc_info=exc,
                    extra={"request_id": self.ctx.request_id, "entry": entry.index},
                )
                failed = errors.internal(self.ctx.request_id)
                out.append({"response": {"status": _status(500), "outcome": failed.outcome}})
        return out


def _patch_ops(resource: Any) -> Any:
    """A PATCH entry carries a Binary (base64 JSON Patch) or Parameters; we take the Binary."""
    if isinstance(resource, dict) and resource.get("resourceType") == "Binary":
        try:
            return orjson.loads(base64.b64decode(resource.get("data", "")))
        except (ValueError, orjson.JSONDecodeError):
            raise errors.invalid(
                "The PATCH Binary does not hold a JSON Patch document", cl_code="CL-4405"
            ) from None
    raise errors.not_supported(
        "PATCH entries must carry a Binary with a JSON Patch document", cl_code="CL-4406"
    )


async def process_bundle(
    server: FhirServer, ctx: RequestContext, bundle: Any, prefs: Preferences
) -> dict[str, Any]:
    kind, entries = _parse_entries(bundle)
    processor = BundleProcessor(server, ctx, prefs)
    results = await (
        processor.transaction(entries) if kind == "transaction" else processor.batch(entries)
    )
    return {"resourceType": "Bundle", "type": f"{kind}-response", "entry": results}
