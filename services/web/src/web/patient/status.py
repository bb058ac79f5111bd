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
from web.i18n import choose, supported, translator
from web.pages import Site, site_of
from web.patient import feedback
from web.questionnaire import Form, forget, localized, patient_voice
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
        {"based-on": f"Task/{task_id}", "_summary": "count"},
        site.credentials,
    )
    return int(bundle.get("total") or 0) > 0


async def _form(site: Site, request: Request, lang: str) -> Form | None:
    """The questions in ``lang``; None when referral-api cannot give them (the page still
    shows the referral, and says the questions cannot be shown now)."""
    t = translator(lang)
    try:
        resource = await patient_voice(request, site, site.credentials)
    except ApiError:
        return None
    return localized(resource, lang, t("yes"), t("no"))


async def _page(
    site: Site,
    request: Request,
    task_id: str,
    notice: str = "",
    status: int = 200,
    given: dict[str, str] | None = None,
    detail: str = "",
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
    asking = survey and not answered and notice not in ("survey_thanks", "survey_already")
    form = await _form(site, request, lang) if asking else None
    return site.render(
        request,
        "status.html",
        {
            "referral": referral,
            "survey": survey,
            "answered": answered,
            "notice": notice,
            "detail": detail,
            "form": form,
            "given": given or {},
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
    data = await csrf.checked_form(request, site.secret)
    referral_url = site.settings.referral_url.rstrip("/")
    task = await site.api.read(f"{referral_url}/Task/{task_id}", site.credentials)
    if task.get("status") not in CLOSED:
        return await _page(site, request, task_id, status=409)
    lang = choose(request, await _patient_language(site, task))
    form = await _form(site, request, lang)
    if form is None:
        return await _page(site, request, task_id, "survey_unavailable", 503)
    answers = feedback.chosen(form, data)
    if feedback.missing(form, answers):
        return await _page(site, request, task_id, "survey_missing", 422, answers)
    authored = datetime.now(UTC).isoformat(timespec="seconds")
    response = feedback.response_for(task, form, answers, lang, authored)
    try:
        await site.api.create(f"{referral_url}/QuestionnaireResponse", response, site.credentials)
    except ApiError as exc:  # referral-api's own checks, in words
        if exc.status == 409:  # answered already (once per referral)
            return await _page(site, request, task_id, "survey_already", 409)
        if exc.status == 422:
            forget(request)
            return await _page(site, request, task_id, "survey_refused", 422, answers, exc.detail)
        raise
    return await _page(site, request, task_id, notice="survey_thanks")
