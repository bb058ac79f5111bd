"""History Bundles (type ``history``), assembled as text around the stored versions."""

from __future__ import annotations

from urllib.parse import urlencode

import orjson
from fastapi import Request

from closedloop.fhir.instant import format_instant, now_us
from closedloop.fhir.storage.records import StoredResource

_STATUS = {"POST": "201 Created", "PUT": "200 OK", "PATCH": "200 OK", "DELETE": "204 No Content"}


def _entry(base: str, stored: StoredResource) -> str:
    url = f"{stored.resource_type}/{stored.id}"
    method = "POST" if stored.method == "POST" else stored.method
    status = (
        "201 Created"
        if stored.version_id == 1 and stored.method != "DELETE"
        else _STATUS.get(stored.method, "200 OK")
    )
    request = {
        "method": "PUT" if method == "PATCH" else method,
        "url": url if method != "POST" else stored.resource_type,
    }
    response = {"status": status, "etag": stored.etag, "lastModified": stored.last_updated_iso}
    parts = [f'"fullUrl":{orjson.dumps(f"{base}/{url}").decode()}']
    if stored.content is not None:
        parts.append(f'"resource":{stored.content}')
    parts.append(f'"request":{orjson.dumps(request).decode()}')
    parts.append(f'"response":{orjson.dumps(response).decode()}')
    return "{" + ",".join(parts) + "}"


def history_bundle(
    rows: list[tuple[int, StoredResource]], count: int, request: Request, base: str
) -> str:
    more = len(rows) > count
    rows = rows[:count]
    path = base + request.url.path.removeprefix("/fhir")
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "_before_seq"]
    links = [{"relation": "self", "url": f"{path}?{urlencode(kept)}" if kept else path}]
    if more and rows:
        links.append(
            {
                "relation": "next",
                "url": f"{path}?{urlencode([*kept, ('_before_seq', str(rows[-1][0]))])}",
            }
        )
    head = (
        f'{{"resourceType":"Bundle","type":"history","timestamp":'
        f'"{format_instant(now_us())}","link":{orjson.dumps(links).decode()}'
    )
    return head + ',"entry":[' + ",".join(_entry(base, s) for _, s in rows) + "]}"
