"""``/inbox/capacity``: a CBO's own listings in directory-api and whether each takes referrals
(the SDOHCC capacity status: accepting, waitlist, full), which directory search shows
(``capacity-status``) and clinicians see in their results.

Only listings whose ``providedBy`` is the person's own Organization are shown or changed;
the write is a PUT with ``If-Match`` on the version read, with the person's token."""

from __future__ import annotations

from typing import Any

from closedloop.auth.organizations import organization_id
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from web.api import ApiError, entries
from web.pages import site_of
from web.security import csrf
from web.signin import person

router = APIRouter()
EXTENSION = (
    "http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition/"
    "SDOHCC-ExtensionHealthcareServiceCapacityStatus"
)
STATUSES = ("capacity", "waitlist", "no-capacity")


def capacity_of(service: dict[str, Any]) -> str:
    for ext in service.get("extension") or []:
        if (ext or {}).get("url") == EXTENSION:
            for sub in ext.get("extension") or []:
                if (sub or {}).get("url") == "capacityStatus":
                    return str(sub.get("valueCode") or "")
    return ""


def with_capacity(service: dict[str, Any], status: str) -> dict[str, Any]:
    others = [e for e in service.get("extension") or [] if (e or {}).get("url") != EXTENSION]
    extension = {"url": EXTENSION, "extension": [{"url": "capacityStatus", "valueCode": status}]}
    return {**service, "extension": [*others, extension]}


def _own_org(session: dict[str, Any]) -> str:
    org = organization_id(str(session.get("organization") or ""))
    if org is None:
        raise ApiError("api_refused", 403)
    return org


@router.get("/inbox/capacity")
async def capacity(request: Request) -> Response:
    site = site_of(request)
    session, auth = await person(request)
    org = _own_org(session)
    bundle = await site.api.search(
        f"{site.settings.directory_url.rstrip('/')}/HealthcareService",
        {"organization": f"Organization/{org}", "_count": "50"},
        auth,
    )
    rows = [
        {
            "id": s.get("id"),
            "name": s.get("name") or "",
            "status": capacity_of(s),
            "version": (s.get("meta") or {}).get("versionId") or "",
        }
        for s in entries(bundle, "HealthcareService")
        if organization_id(str((s.get("providedBy") or {}).get("reference") or "")) == org
    ]
    return site.render(
        request,
        "capacity.html",
        {"rows": rows, "statuses": STATUSES, "done": request.query_params.get("done", "")},
    )


@router.post("/inbox/capacity/{service_id}")
async def set_capacity(request: Request, service_id: str) -> Response:
    site = site_of(request)
    form = await csrf.checked_form(request, site.secret)
    session, auth = await person(request)
    org = _own_org(session)
    status = str(form.get("status") or "")
    if status not in STATUSES:
        raise ApiError("api_invalid", 422, "unknown capacity status")
    url = f"{site.settings.directory_url.rstrip('/')}/HealthcareService/{service_id}"
    service = await site.api.read(url, auth)
    if organization_id(str((service.get("providedBy") or {}).get("reference") or "")) != org:
        raise ApiError("api_not_found", 404)  # another organization's listing
    version = str((service.get("meta") or {}).get("versionId") or "")
    sent = str(form.get("version") or "")
    if sent and sent != version:
        raise ApiError("api_conflict", 409)
    await site.api.update(url, with_capacity(service, status), auth, version)
    return RedirectResponse("/inbox/capacity?done=1", status_code=303)
