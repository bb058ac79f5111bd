"""What every page needs: the templates, the language, the CSRF token, the signed-in person,
and one ``render`` that puts them together (and sets the cookies they imply)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi.templating import Jinja2Templates
from starlette.requests import Request
from starlette.responses import Response

from web import i18n
from web.api import Api
from web.referrals import Referrals
from web.security import csrf
from web.security.cookies import SESSION, Sealer
from web.settings import Settings

HERE = Path(__file__).parent
ONE_YEAR = 365 * 86400


@dataclass
class Site:
    """The app's shared parts, built once at start-up (``request.app.state.site``)."""

    settings: Settings
    secret: str
    sealer: Sealer
    api: Api
    referrals: Referrals
    templates: Jinja2Templates
    credentials: httpx.Auth | None  # the app's own token (the patient page, the survey)

    def session(self, request: Request) -> dict[str, Any] | None:
        """The signed-in person (tokens, role, organization), or None."""
        return self.sealer.read(request, SESSION, self.settings.session_max_age)

    def render(
        self,
        request: Request,
        template: str,
        context: dict[str, Any] | None = None,
        *,
        status: int = 200,
        preferred_lang: str | None = None,
    ) -> Response:
        lang = i18n.choose(request, preferred_lang)
        value = csrf.cookie_value(request)
        new_csrf = not value
        if new_csrf:
            value = csrf.new_value()
            request.state.csrf_value = value
        session = self.session(request)
        switch = {
            code: str(request.url.include_query_params(lang=code)).removeprefix(
                f"{request.url.scheme}://{request.url.netloc}"
            )
            for code in i18n.LANGUAGES
        }
        response = self.templates.TemplateResponse(
            request,
            template,
            {
                "lang": lang,
                "t": i18n.translator(lang),
                "languages": i18n.LANGUAGE_NAMES,
                "switch": switch,
                "csrf_token": csrf.token_for(self.secret, value),
                "user": session,
                **(context or {}),
            },
            status_code=status,
        )
        if new_csrf:
            response.set_cookie(
                csrf.COOKIE,
                value,
                httponly=True,
                secure=self.sealer.secure,
                samesite="strict",
                path="/",
            )
        chosen = i18n.supported(request.query_params.get("lang"))
        if chosen:
            response.set_cookie(
                i18n.COOKIE,
                chosen,
                max_age=ONE_YEAR,
                httponly=True,
                secure=self.sealer.secure,
                samesite="lax",
                path="/",
            )
        response.headers["Cache-Control"] = "no-store"
        return response


def site_of(request: Request) -> Site:
    site: Site = request.app.state.site
    return site


def new_secret() -> str:
    return secrets.token_urlsafe(32)
