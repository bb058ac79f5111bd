"""``/worklist``: a case manager's (or clinician's) standalone view, signed in through the
auth service without an EHR: the referrals their Organization sent, filterable, the stalled
ones (sent, no answer from the organization in ``WEB_STALL_DAYS`` days) on top, oldest first,
then the rest newest first; ``/worklist/referrals/<id>``: one referral's timeline.

referral-api decides what the person sees: a requester's token shows the Tasks its
Organization requested."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from web.api import entries
from web.clinician.referral import timeline
from web.i18n import choose
from web.inbox.pages import FILTERS, patient_summary
from web.pages import site_of
from web.signin import person

router = APIRouter()


def _authored(task: dict[str, Any]) -> datetime | None:
    raw = str(task.get("authoredOn") or "")
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@router.get("/worklist")
async def worklist(request: Request) -> Response:
    site = site_of(request)
    _, auth = await person(request)
    chosen = request.query_params.get("show", "open")
    if chosen not in FILTERS:
        chosen = "open"
    params = {"code": "fulfill", "_sort": "-_lastUpdated", "_count": "200"}
    params["_include"] = "Task:patient"
    statuses = FILTERS[chosen] if chosen != "open" else "requested,accepted,in-progress,on-hold"
    if statuses:
        params["status"] = statuses
    base = site.settings.referral_url.rstrip("/")
    bundle = await site.api.search(f"{base}/Task", params, auth)
    patients = {f"Patient/{p.get('id')}": p for p in entries(bundle, "Patient")}
    cutoff = datetime.now(UTC) - timedelta(days=site.settings.stall_days)
    stalled: list[dict[str, Any]] = []
    others: list[dict[str, Any]] = []
    for task in entries(bundle, "Task"):
        authored = _authored(task)
        is_stalled = (
            task.get("status") == "requested" and authored is not None and authored < cutoff
        )
        row = {
            "id": task.get("id"),
            "status": task.get("status"),
            "sent": str(task.get("authoredOn") or "")[:10],
            "to": str((task.get("owner") or {}).get("display") or ""),
            "patient": patient_summary(patients.get(str((task.get("for") or {}).get("reference"))))[
                "name"
            ],
            "stalled": is_stalled,
            "days": (datetime.now(UTC) - authored).days if authored else 0,
            "authored": authored or datetime.now(UTC),
        }
        (stalled if is_stalled else others).append(row)
    stalled.sort(key=lambda r: r["authored"])
    return site.render(
        request,
        "worklist.html",
        {
            "rows": stalled + others,
            "show": chosen,
            "filters": list(FILTERS),
            "stalled": len(stalled),
        },
    )


@router.get("/worklist/referrals/{task_id}")
async def worklist_referral(request: Request, task_id: str) -> Response:
    site = site_of(request)
    _, auth = await person(request)
    found = await site.referrals.load(task_id, choose(request), auth)
    base = site.settings.referral_url.rstrip("/")
    history = await site.api.search(f"{base}/Task/{task_id}/_history", {}, auth)
    subject = str((found.task.get("for") or {}).get("reference") or "")
    patient = (
        await site.api.read(f"{base}/{subject}", auth) if subject.startswith("Patient/") else None
    )
    return site.render(
        request,
        "worklist_referral.html",
        {
            "referral": found,
            "steps": timeline(entries(history, "Task")),
            "patient": patient_summary(patient),
        },
    )
