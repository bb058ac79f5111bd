"""The clinician's pages, in the patient context an EHR launch gave the sign-in.

- ``GET /launch?iss=&launch=``: SMART EHR launch. ``iss`` must be one of the FHIR servers this
  app is configured for (``WEB_EHR_ISSUERS``); its ``.well-known/smart-configuration`` gives
  the authorization endpoint (or names the issuer whose document does), which must be the
  configured auth service: the app never sends a person, or its key, anywhere else.
- ``GET /clinician``: the patient banner, their SDOH conditions (when the token may read
  them), find help, and their referrals, each with its timeline.
- ``GET /clinician/find``: services near the patient (or a ZIP), by need, language, open now.
- Three screens to refer: the chosen service (from the results), consent and a note
  (``GET /clinician/refer/<service id>``), review and send (``POST .../review``, then
  ``POST .../send``, one transaction to referral-api).
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from web.api import ApiError, Bearer, entries
from web.clinician.referral import CATEGORIES, timeline, transaction
from web.i18n import choose
from web.inbox.capacity import capacity_of
from web.inbox.pages import patient_summary
from web.pages import Site, site_of
from web.referrals import concept_text, telecom
from web.security import csrf
from web.signin import person, start_login

router = APIRouter()
LAUNCH_SCOPE = "launch openid fhirUser online_access user/*.cruds"
ZIP = re.compile(r"^\d{5}$")
NOTE_MAX = 1000


def _issuers(site: Site) -> set[str]:
    configured = site.settings.ehr_issuers or site.settings.referral_url
    return {i.strip().rstrip("/") for i in configured.split(",") if i.strip()}


async def _discover(site: Site, iss: str) -> str:
    """The authorization endpoint from SMART discovery on the EHR's FHIR base."""
    auth_base = site.settings.browser_auth_url  # what auth's documents name (its issuer)
    internal = site.settings.auth_url.rstrip("/")  # where this app reaches it
    try:
        doc = (await site.api.http.get(f"{iss}/.well-known/smart-configuration")).json()
        endpoint = doc.get("authorization_endpoint")
        if not endpoint and str(doc.get("issuer") or "").rstrip("/") == auth_base:
            doc = (await site.api.http.get(f"{internal}/.well-known/smart-configuration")).json()
            endpoint = doc.get("authorization_endpoint")
    except (httpx.HTTPError, ValueError, AttributeError):
        raise ApiError("api_unavailable", 503) from None
    if not isinstance(endpoint, str) or not endpoint.startswith(auth_base + "/"):
        raise ApiError("launch_refused", 400)
    return endpoint


@router.get("/launch")
async def launch(request: Request) -> Response:
    site = site_of(request)
    iss = (request.query_params.get("iss") or "").rstrip("/")
    launch_id = request.query_params.get("launch") or ""
    if not iss or not launch_id or iss not in _issuers(site):
        raise ApiError("launch_refused", 400)
    endpoint = await _discover(site, iss)
    return start_login(
        request,
        next_path="/clinician",
        authorize_url=endpoint,
        scope=LAUNCH_SCOPE,
        aud=iss,
        extra={"launch": launch_id},
    )


async def _context(request: Request) -> tuple[Site, dict[str, Any], Bearer, dict[str, Any]]:
    """The site, sign-in, token and the patient in context (from the launch)."""
    site = site_of(request)
    session, auth = await person(request)
    patient_id = session.get("patient")
    if not patient_id:
        raise ApiError("no_patient", 400)
    base = site.settings.referral_url.rstrip("/")
    patient = await site.api.read(f"{base}/Patient/{patient_id}", auth)
    return site, session, auth, patient


async def _conditions(site: Site, auth: Bearer, patient_id: str) -> list[str]:
    try:
        bundle = await site.api.search(
            f"{site.settings.referral_url.rstrip('/')}/Condition",
            {"patient": f"Patient/{patient_id}", "_count": "20"},
            auth,
        )
    except ApiError:
        return []  # not allowed or not answered: the page goes on without them
    return [concept_text(c.get("code")) for c in entries(bundle, "Condition") if c.get("code")]


async def _referrals(site: Site, auth: Bearer, patient_id: str, lang: str) -> list[Any]:
    base = site.settings.referral_url.rstrip("/")
    bundle = await site.api.search(
        f"{base}/Task",
        {"patient": f"Patient/{patient_id}", "code": "fulfill", "_sort": "-_lastUpdated"},
        auth,
    )
    out = []
    for task in entries(bundle, "Task")[:20]:
        found = await site.referrals.load(str(task.get("id")), lang, auth)
        history = await site.api.search(f"{base}/Task/{task.get('id')}/_history", {}, auth)
        out.append({"referral": found, "steps": timeline(entries(history, "Task"))})
    return out


@router.get("/clinician")
async def clinician(request: Request) -> Response:
    site, _, auth, patient = await _context(request)
    lang = choose(request)
    pid = str(patient.get("id"))
    return site.render(
        request,
        "clinician.html",
        {
            "patient": patient_summary(patient),
            "conditions": await _conditions(site, auth, pid),
            "referrals": await _referrals(site, auth, pid, lang),
            "categories": list(CATEGORIES),
            "sent": request.query_params.get("sent", ""),
        },
    )


def _result(site: Site, service: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    provider = service.get("providedBy") or {}
    reason = ""
    distance = ""
    for ext in (entry.get("search") or {}).get("extension") or []:
        if ext.get("url") == "urn:closedloop:fhir:match-reason":
            reason = str(ext.get("valueCode") or "")
        if "location-distance" in str(ext.get("url")):
            value = (ext.get("valueDistance") or {}).get("value")
            unit = (ext.get("valueDistance") or {}).get("unit") or "km"
            distance = f"{float(value):.1f} {unit}" if value is not None else ""
    return {
        "id": service.get("id"),
        "name": service.get("name") or provider.get("display") or "",
        "organization": provider.get("display") or "",
        "phone": telecom(service.get("telecom"), "phone"),
        "reason": reason,
        "distance": distance,
        "capacity": capacity_of(service),
        "eligibility": eligibility_text(service),
        "locations": [
            str((ref or {}).get("reference") or "").rsplit("/", 1)[-1]
            for ref in service.get("location") or []
            if isinstance(ref, dict) and "Location/" in str(ref.get("reference") or "")
        ],
    }


async def _map_points(site: Site, auth: Bearer, results: list[dict[str, Any]]) -> list[Any]:
    """Each result's sites with a position (one Location search for all), for the map."""
    ids = sorted({i for r in results for i in r["locations"] if re.match(ID, i)})
    if not ids:
        return []
    bundle = await site.api.search(
        f"{site.settings.directory_url.rstrip('/')}/Location",
        {"_id": ",".join(ids), "_count": str(len(ids))},
        auth,
    )
    where = {}
    for loc in bundle.get("entry") or []:
        resource = (loc or {}).get("resource") or {}
        pos = resource.get("position") or {}
        if isinstance(pos.get("latitude"), int | float) and isinstance(
            pos.get("longitude"), int | float
        ):
            where[resource.get("id")] = (float(pos["latitude"]), float(pos["longitude"]))
    return [
        {"name": r["name"], "lat": where[i][0], "lon": where[i][1]}
        for r in results
        for i in r["locations"]
        if i in where
    ]


def eligibility_text(service: dict[str, Any]) -> str:
    """Who the service is for, as the listing says it (``eligibility``: its text, else its
    code's text)."""
    for item in service.get("eligibility") or []:
        if not isinstance(item, dict):
            continue
        code = item.get("code") or {}
        codings = [c for c in code.get("coding") or [] if isinstance(c, dict)]
        text = (
            item.get("comment")
            or code.get("text")
            or next((c.get("display") or c.get("code") for c in codings), "")
        )
        if text:
            return str(text)[:300]
    return ""


@router.get("/clinician/find")
async def find(request: Request) -> Response:
    site, _, auth, patient = await _context(request)
    q = request.query_params
    category = q.get("category") or "food-insecurity"
    zip_code = (q.get("zip") or patient_summary(patient)["zip"] or "").strip()
    language = q.get("language") or ""
    open_now = q.get("open") == "now"
    age = (q.get("age") or "").strip()
    problems = []
    if age and not (age.isdigit() and int(age) <= 120):
        problems.append("bad_age")
    if category not in CATEGORIES:
        problems.append("bad_category")
    if not ZIP.match(zip_code):
        problems.append("bad_zip")
    results: list[dict[str, Any]] = []
    if not problems:
        params = {
            "place-postalcode": f"{zip_code}|10|km",
            "service-category": category,
            "_count": "20",
        }
        if language in ("en", "es"):
            params["communication"] = language
        if open_now:
            params["open"] = "now"
        if age:
            params["age"] = age  # the services whose age range admits the person
        bundle = await site.api.search(
            f"{site.settings.directory_url.rstrip('/')}/HealthcareService", params, auth
        )
        for entry in bundle.get("entry") or []:
            resource = (entry or {}).get("resource") or {}
            if resource.get("resourceType") == "HealthcareService":
                results.append(_result(site, resource, entry))
    points = await _map_points(site, auth, results) if request.app.state.map_available else []
    return site.render(
        request,
        "find.html",
        {
            "patient": patient_summary(patient),
            "categories": list(CATEGORIES),
            "category": category,
            "zip": zip_code,
            "language": language,
            "open_now": open_now,
            "age": age,
            "results": results,
            "points": points,
            "tile_url": site.settings.map_tile_url,
            "tile_attribution": site.settings.map_tile_attribution,
            "problems": problems,
        },
    )


ID = r"^[A-Za-z0-9\-.]{1,64}$"


async def _service(site: Site, auth: Bearer, service_id: str) -> dict[str, Any]:
    if not re.match(r"^[A-Za-z0-9\-.]{1,64}$", service_id):
        raise ApiError("api_not_found", 404)
    base = site.settings.directory_url.rstrip("/")
    service = await site.api.read(f"{base}/HealthcareService/{service_id}", auth)
    provider = service.get("providedBy") or {}
    listing = await site.referrals.listing([{"reference": f"HealthcareService/{service_id}"}],
                                           "en", auth)  # fmt: skip
    org_ref = str(provider.get("reference") or "")
    org_url = site.referrals.directory_ref(org_ref) if org_ref else None
    if org_url is None:
        raise ApiError("api_invalid", 422, "the service names no organization to send to")
    return {
        "id": service_id,
        "url": f"{base}/HealthcareService/{service_id}",
        "name": service.get("name") or "",
        "organization": provider.get("display") or listing.name,
        "organization_url": org_url,
        "address": listing.address,
        "phone": listing.phone,
        "category": next(
            (
                c.get("code")
                for cat in service.get("category") or []
                for c in (cat or {}).get("coding") or []
                if c.get("code") in CATEGORIES
            ),
            "food-insecurity",
        ),
    }


@router.get("/clinician/refer/{service_id}")
async def refer(request: Request, service_id: str) -> Response:
    site, _, auth, patient = await _context(request)
    service = await _service(site, auth, service_id)
    return site.render(
        request,
        "refer_consent.html",
        {"patient": patient_summary(patient), "service": service, "note": "", "problem": ""},
    )


@router.post("/clinician/refer/{service_id}/review")
async def review(request: Request, service_id: str) -> Response:
    site = site_of(request)
    form = await csrf.checked_form(request, site.secret)
    site, _, auth, patient = await _context(request)
    service = await _service(site, auth, service_id)
    note = str(form.get("note") or "").strip()[:NOTE_MAX]
    context = {"patient": patient_summary(patient), "service": service, "note": note}
    if form.get("consent") != "yes":
        return site.render(
            request, "refer_consent.html", {**context, "problem": "needs_consent"}, status=422
        )
    return site.render(request, "refer_review.html", context)


@router.post("/clinician/refer/{service_id}/send")
async def send(request: Request, service_id: str) -> Response:
    site = site_of(request)
    form = await csrf.checked_form(request, site.secret)
    site, session, auth, patient = await _context(request)
    if form.get("consent") != "yes":
        raise ApiError("needs_consent", 422)
    service = await _service(site, auth, service_id)
    requester = str(session.get("organization") or "")
    if not requester.startswith("Organization/"):
        raise ApiError("api_refused", 403)
    bundle = transaction(
        patient=f"Patient/{patient.get('id')}",
        requester=requester,
        category=service["category"],
        service_url=service["url"],
        organization_url=service["organization_url"],
        organization_name=service["organization"],
        note=str(form.get("note") or "").strip()[:NOTE_MAX],
    )
    await site.api.create(site.settings.referral_url.rstrip("/"), bundle, auth)
    return RedirectResponse("/clinician?sent=1", status_code=303)
