"""``/referrals/<task id>?exp=&sig=``: what a patient's message links to (the notifier signs
these links, ``closedloop.links``). Without a sign-in, in the patient's language: what was
asked for, where it went (address, hours, phone), where it stands; at closure the survey.

A link past its time, or changed, gets a page that says so and shows nothing of the referral.
A link without a signature is a staff member's (the notifier's clinic and CBO messages): it
goes to the inbox, behind the sign-in. The app reads with its own service credentials, only
the Task the link names."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from closedloop import links
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from web.api import ApiError
from web.i18n import choose, supported
from web.pages import Site, site_of
from web.patient import feedback
from web.security import csrf

router = APIRouter()
CLOSED = ("completed",)  # the survey is asked when the service was delivered


def _link_state(site: Site, task_id: str, request: Request) -> str:
    secret = site.settings.link_secret
    if secret is None:
        return "invalid"  # no secret configured: no link can be genuine
    q = request.query_params
    return links.check(task_id, q.get("exp"), q.get("sig"), secret.get_secret_value())


def _refused(site: Site, request: Request, state: str) -> Response:
    key = "link_expired" if state == "expired" else "link_invalid"
    return site.render(
        request, "link_refused.html", {"title_key": f"{key}_title", "text_key": key}, status=403
    )


async def _patient_language(site: Site, task: dict[str, Any]) -> str | None:
    ref = str((task.get("for") or {}).get("reference") or "")
    if not ref.startswith("Patient/"):
        return None
    try:
        patient = await site.api.read(
            f"{site.settings.referral_url.rstrip('/')}/{ref}", site.credentials
        )
    except ApiError:
        return None  # the page still shows, in the browser's language
    communications = patient.get("communication") or []
    ordered = sorted(communications, key=lambda c: not (c or {}).get("preferred"))
    for communication in ordered:
        for coding in ((communication or {}).get("language") or {}).get("coding") or []:
            lang = supported((coding or {}).get("code"))
            if lang:
                return lang
    return None


async def _answered(site: Site, task_id: str) -> bool:
    bundle = await site.api.search(
        f"{site.settings.referral_url.rstrip('/')}/QuestionnaireResponse",
        {"identifier": f"{feedback.IDENTIFIER}|{task_id}", "_summary": "count"},
        site.credentials,
    )
    return int(bundle.get("total") or 0) > 0


async def _page(
    site: Site, request: Request, task_id: str, notice: str = "", status: int = 200
) -> Response:
    state = _link_state(site, task_id, request)
    if state != "ok":
        return _refused(site, request, state)
    # the language first (it names the days of the week in the hours)
    task = await site.api.read(
        f"{site.settings.referral_url.rstrip('/')}/Task/{task_id}", site.credentials
    )
    preferred = await _patient_language(site, task)
    lang = choose(request, preferred)
    referral = await site.referrals.load(task_id, lang, site.credentials)
    survey = referral.status in CLOSED
    answered = survey and not notice and await _answered(site, task_id)
    return site.render(
        request,
        "status.html",
        {
            "referral": referral,
            "survey": survey,
            "answered": answered,
            "notice": notice,
            "action": f"/referrals/{task_id}/feedback?{request.url.query}",
        },
        preferred_lang=preferred,
        status=status,
    )


@router.get("/referrals/{task_id}")
async def status_page(request: Request, task_id: str) -> Response:
    q = request.query_params
    if "sig" not in q and "exp" not in q:  # a staff link: the inbox, behind the sign-in
        return RedirectResponse(f"/inbox/referrals/{task_id}", status_code=303)
    return await _page(site_of(request), request, task_id)


@router.post("/referrals/{task_id}/feedback")
async def save_feedback(request: Request, task_id: str) -> Response:
    site = site_of(request)
    state = _link_state(site, task_id, request)
    if state != "ok":
        return _refused(site, request, state)
    form = await csrf.checked_form(request, site.secret)
    received = str(form.get("received") or "")
    helpful = str(form.get("helpful") or "")
    comment = str(form.get("comment") or "").strip()
    if received not in feedback.RECEIVED or helpful not in feedback.HELPFUL:
        return await _page(site, request, task_id, notice="survey_missing", status=422)
    referral_url = site.settings.referral_url.rstrip("/")
    task = await site.api.read(f"{referral_url}/Task/{task_id}", site.credentials)
    if task.get("status") not in CLOSED:
        return await _page(site, request, task_id, status=409)
    response = feedback.response_for(task, received, helpful, comment, choose(request))
    response["authored"] = datetime.now(UTC).isoformat(timespec="seconds")
    await site.api.create(
        f"{referral_url}/QuestionnaireResponse",
        response,
        site.credentials,
        if_none_exist=feedback.identifier_query(task_id),
    )
    return await _page(site, request, task_id, notice="survey_thanks")
