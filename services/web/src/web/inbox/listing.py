"""``/inbox/listings/<id>``: a CBO edits its own listing in directory-api (name, description,
phone, email, web site, SDOH categories, languages, eligibility, hours).

Only a listing whose ``providedBy`` is the person's own Organization is shown (directory-api
refuses the write of any other, too). The write is a PUT with ``If-Match`` on the version the
form was read at, with the person's token: a listing changed meanwhile (412) is a message to
reload, a refused one (422) shows directory-api's diagnostics. Fields the form does not show
are kept as they were."""

from __future__ import annotations

import re
from typing import Any

from closedloop.auth.organizations import organization_id
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData
from starlette.responses import Response

from web.api import ApiError
from web.clinician.referral import CATEGORIES, SDOHCC
from web.inbox.capacity import _own_org
from web.pages import site_of
from web.security import csrf
from web.signin import person

router = APIRouter()
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
MAX = {"name": 200, "comment": 2000, "phone": 40, "email": 200, "url": 500, "eligibility": 1000}


def _telecom(service: dict[str, Any], system: str) -> str:
    for t in service.get("telecom") or []:
        if isinstance(t, dict) and t.get("system") == system and t.get("value"):
            return str(t["value"])
    return ""


def _codes(service: dict[str, Any], key: str) -> list[str]:
    return [
        str(c.get("code"))
        for concept in service.get(key) or []
        for c in (concept or {}).get("coding") or []
        if isinstance(c, dict) and c.get("code")
    ]


def fields_of(service: dict[str, Any]) -> dict[str, Any]:
    """What the form shows of a listing."""
    hours = next((h for h in service.get("availableTime") or [] if isinstance(h, dict)), {})
    eligibility = next((e for e in service.get("eligibility") or [] if isinstance(e, dict)), {})
    return {
        "name": str(service.get("name") or ""),
        "comment": str(service.get("comment") or ""),
        "phone": _telecom(service, "phone"),
        "email": _telecom(service, "email"),
        "url": _telecom(service, "url"),
        "categories": [c for c in _codes(service, "category") if c in CATEGORIES],
        "languages": ", ".join(_codes(service, "communication")),
        "eligibility": str(eligibility.get("comment") or ""),
        "days": list(hours.get("daysOfWeek") or []),
        "opens": str(hours.get("availableStartTime") or "")[:5],
        "closes": str(hours.get("availableEndTime") or "")[:5],
    }


def edited(service: dict[str, Any], form: FormData) -> dict[str, Any]:
    """The listing with the form's fields; a bad value is a 422 naming the field."""

    def text(name: str) -> str:
        value = str(form.get(name) or "").strip()
        if len(value) > MAX[name]:
            raise ApiError("api_invalid", 422, f"{name}: at most {MAX[name]} characters")
        return value

    body = dict(service)
    name = text("name")
    if not name:
        raise ApiError("api_invalid", 422, "name: required")
    body["name"] = name
    for key, value in (("comment", text("comment")),):
        if value:
            body[key] = value
        else:
            body.pop(key, None)
    telecom = [
        t
        for t in service.get("telecom") or []
        if isinstance(t, dict) and t.get("system") not in ("phone", "email", "url")
    ]
    for system in ("phone", "email", "url"):
        value = text(system)
        if system == "email" and value and "@" not in value:
            raise ApiError("api_invalid", 422, "email: not an email address")
        if system == "url" and value and not value.startswith(("https://", "http://")):
            raise ApiError("api_invalid", 422, "url: must start with https://")
        if value:
            telecom.append({"system": system, "value": value})
    _set(body, "telecom", telecom)
    chosen = [c for c in form.getlist("category") if c in CATEGORIES]
    others = [
        concept
        for concept in service.get("category") or []
        if not any(c.get("code") in CATEGORIES for c in (concept or {}).get("coding") or [])
    ]
    categories = [{"coding": [{"system": SDOHCC, "code": c}]} for c in chosen]
    _set(body, "category", [*others, *categories])
    languages = [s.strip() for s in str(form.get("languages") or "").split(",") if s.strip()]
    for code in languages:
        if not LANGUAGE.match(code):
            raise ApiError("api_invalid", 422, f"languages: {code[:20]} is not a language code")
    _set(
        body,
        "communication",
        [{"coding": [{"system": "urn:ietf:bcp:47", "code": c}]} for c in languages],
    )
    eligibility = text("eligibility")
    rest = [e for e in service.get("eligibility") or [] if isinstance(e, dict)]
    first = dict(rest[0]) if rest else {}
    if eligibility:
        first["comment"] = eligibility
    else:
        first.pop("comment", None)
    _set(body, "eligibility", ([first] if first else []) + rest[1:])
    days = [d for d in DAYS if d in form.getlist("day")]
    opens, closes = str(form.get("opens") or ""), str(form.get("closes") or "")
    for label, value in (("opens", opens), ("closes", closes)):
        if value and not TIME.match(value):
            raise ApiError("api_invalid", 422, f"{label}: a time as HH:MM")
    hours = [h for h in service.get("availableTime") or [] if isinstance(h, dict)][1:]
    if days:
        if not (opens and closes):
            raise ApiError("api_invalid", 422, "hours: give opening and closing times")
        hours.insert(
            0,
            {
                "daysOfWeek": days,
                "availableStartTime": f"{opens}:00",
                "availableEndTime": f"{closes}:00",
            },
        )
    _set(body, "availableTime", hours)
    return body


def _set(body: dict[str, Any], key: str, value: list[Any]) -> None:
    if value:
        body[key] = value
    else:
        body.pop(key, None)


async def _own_listing(request: Request, service_id: str) -> tuple[Any, Any, str, dict[str, Any]]:
    site = site_of(request)
    session, auth = await person(request)
    org = _own_org(session)
    url = f"{site.settings.directory_url.rstrip('/')}/HealthcareService/{service_id}"
    service = await site.api.read(url, auth)
    if organization_id(str((service.get("providedBy") or {}).get("reference") or "")) != org:
        raise ApiError("api_not_found", 404)  # another organization's listing
    return site, auth, url, service


@router.get("/inbox/listings/{service_id}")
async def listing(request: Request, service_id: str) -> Response:
    site, _auth, _url, service = await _own_listing(request, service_id)
    return site.render(
        request,
        "listing.html",
        {
            "id": service_id,
            "version": (service.get("meta") or {}).get("versionId") or "",
            "f": fields_of(service),
            "categories": list(CATEGORIES),
            "days": DAYS,
            "done": request.query_params.get("done", ""),
        },
    )


@router.post("/inbox/listings/{service_id}")
async def save_listing(request: Request, service_id: str) -> Response:
    site = site_of(request)
    form = await csrf.checked_form(request, site.secret)
    _site, auth, url, service = await _own_listing(request, service_id)
    sent = str(form.get("version") or "")
    try:
        # the version the form was read at: a change since then is a 412 from directory-api
        await site.api.update(url, edited(service, form), auth, sent or None)
    except ApiError as exc:
        if exc.key == "api_conflict":
            raise ApiError("listing_conflict", 409) from None
        raise
    return RedirectResponse(f"/inbox/listings/{service_id}?done=1", status_code=303)
