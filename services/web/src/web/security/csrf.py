"""CSRF: every form carries a token that must match the browser's CSRF cookie.

The cookie holds a random value (HttpOnly, SameSite=Strict); the form's hidden ``csrf`` field
(or htmx's ``X-CSRF-Token`` header) holds an HMAC of it under the app's secret. Another site
can make a browser post a form, but cannot read the cookie nor compute the token, so a post
without the matching pair is refused (403) before anything is done."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.datastructures import FormData
from starlette.requests import Request

COOKIE = "web_csrf"
FIELD = "csrf"
HEADER = "x-csrf-token"


class CsrfError(Exception):
    """The form's token is missing or does not match the cookie."""


def new_value() -> str:
    return secrets.token_urlsafe(32)


def token_for(secret: str, value: str) -> str:
    return hmac.new(secret.encode(), f"csrf|{value}".encode(), hashlib.sha256).hexdigest()


def cookie_value(request: Request) -> str:
    """The browser's CSRF cookie value, or the new one this response sets (see app.py)."""
    return str(getattr(request.state, "csrf_value", "") or request.cookies.get(COOKIE) or "")


async def checked_form(request: Request, secret: str) -> FormData:
    """The posted form, once its CSRF token matched the cookie; CsrfError otherwise."""
    form = await request.form()
    sent = str(form.get(FIELD) or request.headers.get(HEADER) or "")
    value = request.cookies.get(COOKIE) or ""
    if not value or not sent or not hmac.compare_digest(token_for(secret, value), sent):
        raise CsrfError
    return form
