"""``/inbox``: the referrals the signed-in person's organization owns, newest first, filtered
by where they stand; ``/inbox/referrals/<id>``: one referral with the patient's minimum
necessary details (name, birth date, phone, language, ZIP: enough to reach the person, nothing
clinical beyond the request) and the moves its status allows.

Every read and write goes to referral-api with the person's own token: its role and
Organization decide what they see and may change (a CBO sees only its Tasks), never this
app."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from web.api import ApiError, entries
from web.i18n import LANGUAGE_NAMES, choose, supported
from web.inbox.moves import BY_ACTION, moved, moves_for, procedure
from web.pages import site_of
from web.referrals import concept_text, telecom
from web.security import csrf
from web.signin import person

router = APIRouter()
FILTERS = {
    "new": "requested",
    "open": "accepted,in-progress,on-hold",
    "closed": "completed,cancelled,rejected,failed",
    "all": "",
}
REASON_MAX = 500


def patient_summary(patient: dict[str, Any] | None) -> dict[str, str]:
    """The minimum necessary to reach the person."""
    patient = patient or {}
    names = [n for n in patient.get("name") or [] if isinstance(n, dict)]
    name: dict[str, Any] = names[0] if names else {}
    full = name.get("text") or " ".join([*(name.get("given") or []), name.get("family") or ""])
    language = ""
    for communication in patient.get("communication") or []:
        text = concept_text((communication or {}).get("language"))
        language = LANGUAGE_NAMES.get(supported(text) or "", text) or language
    zip_code = next(
        (a.get("postalCode") for a in patient.get("address") or [] if a.get("postalCode")), ""
    )
    return {
        "name": str(full).strip(),
        "birth_date": str(patient.get("birthDate") or ""),
        "phone": telecom(patient.get("telecom"), "phone"),
        "language": language,
        "zip": str(zip_code or ""),
    }


@router.get("/inbox")
async def inbox(request: Request) -> Response:
    site = site_of(request)
    session, auth = await person(request)
    chosen = request.query_params.get("show", "new")
    if chosen not in FILTERS:
        chosen = "new"
    params = {
        "code": "fulfill",
        "_sort": "-_lastUpdated",
        "_count": "100",
        "_include": "Task:patient",
    }
    if FILTERS[chosen]:
        params["status"] = FILTERS[chosen]
    base = site.settings.referral_url.rstrip("/")
    bundle = await site.api.search(f"{base}/Task", params, auth)
    patients = {f"Patient/{p.get('id')}": p for p in entries(bundle, "Patient")}
    rows = []
    for task in entries(bundle, "Task"):
        subject = str((task.get("for") or {}).get("reference") or "")
        rows.append(
            {
                "id": task.get("id"),
                "status": task.get("status"),
                "authored": str(task.get("authoredOn") or "")[:10],
                "patient": patient_summary(patients.get(subject))["name"],
            }
        )
    return site.render(
        request,
        "inbox.html",
        {"rows": rows, "show": chosen, "filters": list(FILTERS), "session": session},
    )


@router.get("/inbox/referrals/{task_id}")
async def referral(request: Request, task_id: str) -> Response:
    site = site_of(request)
    _, auth = await person(request)
    found = await site.referrals.load(task_id, choose(request), auth)
    subject = str((found.task.get("for") or {}).get("reference") or "")
    patient = None
    if subject.startswith("Patient/"):
        patient = await site.api.read(f"{site.settings.referral_url.rstrip('/')}/{subject}", auth)
    return site.render(
        request,
        "inbox_referral.html",
        {
            "referral": found,
            "patient": patient_summary(patient),
            "moves": moves_for(found.status),
            "done": request.query_params.get("done", ""),
        },
    )


@router.post("/inbox/referrals/{task_id}/move")
async def move(request: Request, task_id: str) -> Response:
    site = site_of(request)
    form = await csrf.checked_form(request, site.secret)
    _, auth = await person(request)
    chosen = BY_ACTION.get(str(form.get("action") or ""))
    if chosen is None:
        raise ApiError("api_invalid", 422, "unknown action")
    reason = str(form.get("reason") or "").strip()[:REASON_MAX]
    outcome = str(form.get("outcome") or "").strip()[:REASON_MAX]
    if chosen.needs == "reason" and not reason:
        raise ApiError("needs_reason", 422)
    if chosen.needs == "outcome" and not outcome:
        raise ApiError("needs_outcome", 422)
    base = site.settings.referral_url.rstrip("/")
    task = await site.api.read(f"{base}/Task/{task_id}", auth)
    version = str(form.get("version") or "")
    current = str((task.get("meta") or {}).get("versionId") or "")
    if version and version != current:
        raise ApiError("api_conflict", 409)  # someone moved it since the page was shown
    procedure_id = None
    if chosen.needs == "outcome":
        created = await site.api.create(f"{base}/Procedure", procedure(task, outcome), auth)
        procedure_id = str(created.get("id") or "") or None
    updated = moved(task, chosen, reason, procedure_id)
    await site.api.update(f"{base}/Task/{task_id}", updated, auth, current)
    return RedirectResponse(f"/inbox/referrals/{task_id}?done={chosen.action}", status_code=303)
