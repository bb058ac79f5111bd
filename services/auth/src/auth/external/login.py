"""``POST /authorize/external`` and ``GET /authorize/external/callback``: a person signs in at
the trusted external issuer in the middle of an app's SMART authorization.

Off: the sign-in page's "Sign in with ..." form posts the app's authorization parameters (with
the page's CSRF token); they are validated again, kept server-side under the hash of a fresh
``state`` with a fresh ``nonce`` and PKCE verifier, and the browser goes to the issuer. The
sign-in is bound to the browser that started it by a random value in an HttpOnly
``SameSite=Lax`` cookie (Lax: the issuer sends the browser back with a cross-site top-level
GET, which a Strict cookie would not ride), whose hash is kept with it.

Back: the ``state`` finds the sign-in (once: it is deleted as it is read; at most
``AUTH_EXTERNAL_OIDC_LOGIN_LIFETIME`` old) and the cookie must match; the code is exchanged
with the PKCE verifier, the id_token checked (``provider``), and its subject (the
``AUTH_EXTERNAL_OIDC_CLAIM``) must name a local account (``auth users add
--external-subject``), unless provisioning is configured. Then the app's authorization goes on
exactly as after a password sign-in. Every outcome goes on the audit trail
(``external-login``); a refusal is a page, never a redirect carrying anything from the issuer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid

from closedloop.db import Database
from sqlalchemy import delete, insert
from starlette.requests import Request
from starlette.responses import Response

from auth.audit.decisions import AuthAudit, Who
from auth.authorize import AuthorizeEndpoint, PageError, Posted, RedirectError, redirect
from auth.external.provider import ExternalIssuer, ExternalRefused
from auth.login_page import choose_language, error_page
from auth.settings import Settings
from auth.tables import external_logins
from auth.users import User, UserError, add_user, get_user_by_external_subject

COOKIE = "auth_external"
COOKIE_PATH = "/authorize/external"
_USERNAME = re.compile(r"^[A-Za-z0-9._@+-]{1,200}$")
PAGES = {  # reason -> (page, status)
    "unknown_subject": ("unknown_subject", 403),
    "user_disabled": ("user_disabled", 403),
    "bad_state": ("bad_state", 400),
    "external_refused": ("external_failed", 502),
}


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class ExternalLogin:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        authorize: AuthorizeEndpoint,
        audit: AuthAudit | None,
        issuer: ExternalIssuer,
    ) -> None:
        self.settings = settings
        self.db = db
        self.authorize = authorize
        self.audit = audit
        self.issuer = issuer
        self.secure_cookie = settings.issuer.startswith("https://")

    async def start(self, request: Request) -> Response:
        form = await self.authorize.posted(request)
        if not isinstance(form, Posted):
            return form
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        verifier, browser = secrets.token_urlsafe(48), secrets.token_urlsafe(32)
        try:
            url = await self.issuer.authorization_url(state, nonce, _challenge(verifier))
        except ExternalRefused as exc:
            return error_page(form.lang, "external_unavailable", exc.detail, 503)
        lifetime = self.settings.external_oidc_login_lifetime
        carried = {**form.auth.carried, "lang": form.lang}
        async with self.db.write() as conn:
            await conn.execute(
                delete(external_logins).where(external_logins.c.expires_at < time.time())
            )
            await conn.execute(
                insert(external_logins).values(
                    state_hash=_hash(state),
                    browser_hash=_hash(browser),
                    nonce=nonce,
                    code_verifier=verifier,
                    request=json.dumps(carried),
                    expires_at=time.time() + lifetime,
                )
            )
        response = redirect(url)
        response.set_cookie(
            COOKIE,
            browser,
            max_age=lifetime,
            path=COOKIE_PATH,
            secure=self.secure_cookie,
            httponly=True,
            samesite="lax",
        )
        return response

    async def _take(self, state: str) -> dict[str, str] | None:
        """The sign-in this state names, deleted as it is read (a state works once)."""
        async with self.db.write() as conn:
            row = (
                await conn.execute(
                    delete(external_logins)
                    .where(external_logins.c.state_hash == _hash(state))
                    .returning(*external_logins.c)
                )
            ).first()
        if row is None or row.expires_at < time.time():
            return None
        return {
            "browser_hash": row.browser_hash,
            "nonce": row.nonce,
            "code_verifier": row.code_verifier,
            "request": row.request,
        }

    async def callback(self, request: Request) -> Response:
        query = request.query_params
        lang = choose_language(query.get("lang"), request.headers.get("accept-language"))
        request_id = getattr(request.state, "request_id", "-")
        state = query.get("state", "")
        stored = await self._take(state[:200]) if state else None
        browser = request.cookies.get(COOKIE, "")
        if stored is None or not hmac.compare_digest(_hash(browser), stored["browser_hash"]):
            await self._record(None, None, 400, "bad_state", request_id)
            return self._page(lang, "bad_state")
        params: dict[str, str] = json.loads(stored["request"])
        lang = params.get("lang", lang)
        try:
            auth = await self.authorize.validate(params)  # the app may be disabled meanwhile
        except PageError as exc:
            return error_page(lang, exc.key, exc.detail)
        except RedirectError as exc:
            return self.authorize.error_redirect(exc)
        client_id = auth.client.client_id
        if query.get("error") or not query.get("code"):
            await self._record(None, client_id, 401, "external_refused", request_id)
            return self.authorize.error_redirect(
                RedirectError(
                    auth.redirect_uri,
                    auth.state,
                    "access_denied",
                    "the sign-in at the external identity provider did not complete",
                )
            )
        try:
            id_token = await self.issuer.exchange(query["code"][:2048], stored["code_verifier"])
            claims = await self.issuer.verify(id_token, stored["nonce"])
            user = await self._local_user(claims)
        except ExternalRefused as exc:
            subject = exc.detail if exc.reason in ("unknown_subject", "user_disabled") else None
            status = PAGES.get(exc.reason, ("", 401))[1]
            await self._record(subject, client_id, status, exc.reason, request_id)
            return self._page(lang, exc.reason, "" if subject else exc.detail)
        response = await self.authorize.issue_code(auth, user, "external-login", request_id)
        response.delete_cookie(COOKIE, path=COOKIE_PATH)
        return response

    async def _local_user(self, claims: dict[str, object]) -> User:
        claim = self.settings.external_oidc_claim
        value = claims.get(claim)
        if claim == "email" and claims.get("email_verified") is not True:
            raise ExternalRefused("bad_claims", "the issuer has not verified this e-mail")
        if not isinstance(value, str) or not value:
            raise ExternalRefused("bad_claims", f"the id_token has no {claim}")
        user = await get_user_by_external_subject(self.db, value)
        if user is None:
            user = await self._provision(value)
        if user is None:
            raise ExternalRefused("unknown_subject", value)
        if user.disabled:
            raise ExternalRefused("user_disabled", value)
        return user

    async def _provision(self, subject: str) -> User | None:
        """A local account for a new external subject, when configured to (else None)."""
        organization = self.settings.external_oidc_provision_organization
        role = self.settings.external_oidc_provision_role
        if not organization or not role:
            return None
        username = subject if _USERNAME.match(subject) else f"ext-{_hash(subject)[:20]}"
        try:
            user = await add_user(
                self.db,
                username=username,
                password=None,
                organization=organization,
                role=role,
                external_subject=subject,
            )
        except UserError:  # the username is taken: one that cannot be
            user = await add_user(
                self.db,
                username=f"ext-{uuid.uuid4().hex[:20]}",
                password=None,
                organization=organization,
                role=role,
                external_subject=subject,
            )
        if self.audit is not None:
            await self.audit.record(
                "user-add",
                Who("external-provisioning", role="admin"),
                0,
                entities=[("user", user.user_id)],
                action="C",
            )
        return user

    async def _record(
        self, subject: str | None, client_id: str | None, status: int, reason: str, rid: str
    ) -> None:
        if self.audit is None:
            return
        who = Who(f"external:{subject}" if subject else "unknown-user", client_id)
        entities = [("client", client_id)] if client_id else []
        if subject:
            entities.append(("external-subject", subject[:64]))
        await self.audit.record(
            "external-login", who, status, reason=reason, entities=entities, request_id=rid
        )

    def _page(self, lang: str, reason: str, detail: str = "") -> Response:
        page, status = PAGES.get(reason, ("external_failed", 401))
        return error_page(lang, page, detail, status)
