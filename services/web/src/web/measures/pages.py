"""``/measures``: the loop metrics for signed-in staff (admin, case manager, CBO staff): a
period's main figures, overall and per CBO, two charts, the patients' voice, and
``/measures/loop-metrics.csv``.

Every figure comes from referral-api's ``Measure/closed-loop/$evaluate-measure`` and
``Questionnaire/patient-voice/$aggregate`` called with the person's own token, so referral-api
decides what they see (a CBO its own figures, a requester its own, an admin all) and hides the
small cells; this app only shows them. The charts are referral-api's SVG, checked to be an SVG
document and shown as ``<img>`` data (an image cannot run script nor load anything)."""

from __future__ import annotations

import asyncio
import base64
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from web.api import ApiError
from web.i18n import choose, translator
from web.measures import period as periods
from web.measures.figures import COUNTS, TIMES, Row, Voice, report_rows, voice_figures
from web.pages import Site, site_of
from web.questionnaire import Form, localized, patient_voice
from web.signin import person

router = APIRouter()
STAFF = frozenset({"admin", "case-manager", "cbo-staff"})
MEASURE = "Measure/closed-loop/$evaluate-measure"
AGGREGATE = "Questionnaire/patient-voice/$aggregate"
SVG_MAX = 500_000
CSV_MAX = 5_000_000


def _sign_in(request: Request) -> Response:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/auth/login?{urlencode({'next': here})}", status_code=303)


async def _staff(request: Request) -> tuple[dict[str, Any], httpx.Auth]:
    session, auth = await person(request)
    if session.get("role") not in STAFF:
        raise ApiError("api_refused", 403)
    return session, auth


def _params(chosen: periods.Period, **extra: str) -> dict[str, str]:
    return {
        "periodStart": chosen.start.isoformat(),
        "periodEnd": chosen.end.isoformat(),
        **extra,
    }


def safe_svg(text: str, media: str) -> str | None:
    """The chart as a data URI for ``<img>``, when it is an SVG document; else None."""
    if media != "image/svg+xml" or len(text) > SVG_MAX or "<!DOCTYPE" in text.upper():
        return None  # no DTD: no entities to expand
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return None
    if root.tag != "{http://www.w3.org/2000/svg}svg":
        return None
    return "data:image/svg+xml;base64," + base64.b64encode(text.encode()).decode()


async def _chart(
    site: Site, auth: httpx.Auth, chosen: periods.Period, figure: str, by: str
) -> str | None:
    url = f"{site.settings.referral_url.rstrip('/')}/{MEASURE}"
    try:
        text, media = await site.api.text(
            url, _params(chosen, _format="svg", figure=figure, by=by), auth, SVG_MAX
        )
    except ApiError:
        return None  # the tables still show
    return safe_svg(text, media)


async def _names(site: Site, refs: set[str]) -> dict[str, str]:
    """The CBOs' names from directory-api (their ids otherwise)."""
    base = site.settings.directory_url.rstrip("/")

    async def name(ref: str) -> tuple[str, str]:
        kind, _, rid = ref.partition("/")
        if kind != "Organization" or not rid or "/" in rid:
            return ref, ref
        try:
            org = await site.api.read(f"{base}/Organization/{rid}", site.credentials)
        except ApiError:
            return ref, ref
        return ref, str(org.get("name") or ref)

    found = await asyncio.gather(*(name(r) for r in sorted(refs)[:50]))
    return dict(found)


def _number(value: float, lang: str, digits: int) -> str:
    text = f"{value:.{digits}f}"
    return text.replace(".", ",") if lang == "es" else text


class Shown:
    """Figures as the page writes them: a hidden count as ``<min_cell`` (or "hidden" when the
    limit is not known), a hidden rate or time as "hidden"."""

    def __init__(self, lang: str, min_cell: int | None) -> None:
        self.lang, self.min_cell = lang, min_cell
        self.hidden = translator(lang)("hidden")

    def count(self, n: int | None) -> str:
        if n is not None:
            return str(n)
        return f"<{self.min_cell}" if self.min_cell else self.hidden

    def rate(self, value: float | None) -> str:
        return self.hidden if value is None else f"{_number(value * 100, self.lang, 0)} %"

    def hours(self, value: float | None) -> str:
        return self.hidden if value is None else f"{_number(value, self.lang, 1)} h"

    def row(self, row: Row) -> dict[str, str]:
        out = {name: self.count(row.counts.get(name)) for name in COUNTS}
        out["closure-rate"] = self.rate(row.rate)
        out.update({name: self.hours(row.hours.get(name)) for name in TIMES})
        return out


def _voice_tables(voices: list[Voice], form: Form | None, shown: Shown) -> list[dict[str, Any]]:
    tables = []
    for voice in voices:
        rows = []
        for question in form.questions if form else ():
            for option in question.options:
                n = voice.answers.get((question.link_id, option.code))
                rows.append(
                    {"question": question.text, "answer": option.label, "count": shown.count(n)}
                )
        tables.append(
            {
                "organization": voice.organization,
                "responses": shown.count(voice.responses),
                "rows": rows,
            }
        )
    return tables


@router.get("/measures")
async def measures(request: Request) -> Response:
    site = site_of(request)
    try:
        session, auth = await _staff(request)
    except ApiError as exc:
        if exc.status == 401:
            return _sign_in(request)
        raise
    lang = choose(request)
    today = datetime.now(UTC).date()
    chosen = periods.chosen(request.query_params.get("period"), today)
    base = site.settings.referral_url.rstrip("/")
    charts = [("sent", "month" if chosen.is_year else "cbo"), ("closure-rate", "category")]
    try:
        report, aggregate, *images = await asyncio.gather(
            site.api.search(f"{base}/{MEASURE}", _params(chosen), auth),
            site.api.read(f"{base}/{AGGREGATE}", auth),
            *(_chart(site, auth, chosen, figure, by) for figure, by in charts),
        )
    except ApiError as exc:
        if exc.status == 401:
            return _sign_in(request)
        raise
    t = translator(lang)
    try:
        form: Form | None = localized(
            await patient_voice(request, site, auth), lang, t("yes"), t("no")
        )
    except ApiError:
        form = None  # the counts still show, by code
    min_cell, voices = voice_figures(aggregate)
    shown = Shown(lang, min_cell)
    total, by_cbo = report_rows(report)
    names = await _names(site, {r.key for r in by_cbo} | {v.organization for v in voices})
    return site.render(
        request,
        "measures.html",
        {
            "session": session,
            "period": chosen,
            "months": [(k, periods.label(k, lang)) for k in periods.months(today)],
            "years": periods.years(today),
            "period_label": periods.label(chosen.key, lang),
            "total": shown.row(total),
            "sent": total.counts.get("sent"),
            "rows": [
                {"key": r.key, "name": names.get(r.key, r.key), **shown.row(r)} for r in by_cbo
            ],
            "counts": COUNTS,
            "times": TIMES,
            "charts": [
                {"src": src, "alt": t(f"chart_{figure}_{by}")}
                for (figure, by), src in zip(charts, images, strict=True)
            ],
            "min_cell": min_cell,
            "voice": _voice_tables(voices, form, shown),
            "names": names,
            "csv": f"/measures/loop-metrics.csv?{urlencode({'period': chosen.key})}",
        },
    )


@router.get("/measures/loop-metrics.csv")
async def download(request: Request) -> Response:
    site = site_of(request)
    try:
        _, auth = await _staff(request)
    except ApiError as exc:
        if exc.status == 401:
            return _sign_in(request)
        raise
    chosen = periods.chosen(request.query_params.get("period"), datetime.now(UTC).date())
    url = f"{site.settings.referral_url.rstrip('/')}/{MEASURE}"
    text, _ = await site.api.text(url, _params(chosen, _format="csv"), auth, CSV_MAX)
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="loop-metrics-{chosen.key}.csv"',
            "Cache-Control": "no-store",
        },
    )
