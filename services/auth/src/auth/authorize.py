"""``GET /authorize`` and ``POST /authorize``: a person signs in and the app gets a code.

GET validates the request and shows the sign-in form; the form posts back every parameter
with the username, the password and a CSRF token (double-submit: the same random value in a
``SameSite=Strict`` HttpOnly cookie), and the POST validates the request again (a client may
have been disabled meanwhile) before checking the password.

A request is checked in an order that never sends anything to an unverified place: until the
client and its exactly-registered ``redirect_uri`` are known, errors are an HTML page; after,
they go back to the app as RFC 6749 error redirects with ``state``. PKCE S256 is required: a
request without ``code_challenge``, or with ``plain``, is refused.

Not Authlib: its authorization endpoint is synchronous and has no place for an HTML sign-in
in between; this module is the whole of it, and the code it issues is redeemed through
Authlib's authorization-code grant (``auth.server``).
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass, field
from typing import NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from closedloop.db import Database
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from auth import grants
from auth.audit.decisions import AuthAudit, Who
from auth.clients import Client, get_client
from auth.login_page import choose_language, error_page, login_page
from auth.scopes import PERSON, granted_scopes
from auth.settings import Settings
from auth.throttle import Throttle
from auth.users import User, authenticate, get_user_by_name

# the parameters carried from the GET to the form's POST
PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "aud",
    "code_challenge",
    "code_challenge_method",
    "nonce",
    "launch",
    "ui_locales",
    "lang",
    "prompt",
)
_CHALLENGE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")  # RFC 7636; S256 gives exactly 43
MAX_FORM_BYTES = 64 * 1024
MAX_PARAM = 2048
CSRF_COOKIE = "auth_csrf"


class PageError(Exception):
    """Shown as a page: the request cannot be trusted to go back to the app."""

    def __init__(self, key: str, detail: str = "") -> None:
        super().__init__(key)
        self.key = key
        self.detail = detail


class RedirectError(Exception):
    """Sent back to the app's verified redirect URI as an RFC 6749 error."""

    def __init__(self, redirect_uri: str, state: str | None, error: str, description: str):
        super().__init__(error)
        self.redirect_uri = redirect_uri
        self.state = state
        self.error = error
        self.description = description


@dataclass
class AuthorizeRequest:
    client: Client
    redirect_uri: str
    state: str
    scopes: list[str]
    code_challenge: str
    nonce: str | None
    context: dict[str, str] = field(default_factory=dict)
    carried: dict[str, str] = field(default_factory=dict)


class Posted(NamedTuple):
    lang: str
    params: dict[str, str]
    auth: AuthorizeRequest
    csrf: str


def with_params(uri: str, params: dict[str, str]) -> str:
    """``uri`` with ``params`` added to its query (a registered URI may have one)."""
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def redirect(uri: str) -> Response:
    return RedirectResponse(uri, status_code=303, headers={"Cache-Control": "no-store"})


def single_values(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """The form or query as a dict; a repeated or oversized parameter is refused (RFC 6749:
    parameters MUST NOT be included more than once)."""
    values: dict[str, str] = {}
    for k, v in pairs:
        if k in values:
            raise PageError("bad_request", f"{k} is repeated")
        if len(v) > MAX_PARAM:
            raise PageError("bad_request", f"{k} is too long")
        values[k] = v
    return values


class AuthorizeEndpoint:
    def __init__(self, settings: Settings, db: Database, audit: AuthAudit | None = None) -> None:
        self.settings = settings
        self.db = db
        self.audit = audit
        self.per_user = Throttle(settings.login_max_failures, settings.login_window)
        self.per_address = Throttle(settings.login_max_failures_per_address, settings.login_window)
        self.audiences = {a.rstrip("/") for a in settings.audience_list}
        self.secure_cookie = settings.issuer.startswith("https://")
        self.external_name = settings.external_oidc_display_name  # its button, if any

    async def validate(self, p: dict[str, str]) -> AuthorizeRequest:
        client_id = p.get("client_id", "")
        client = await get_client(self.db, client_id[:200]) if client_id else None
        if client is None or client.disabled or not client.redirect_uris:
            raise PageError("unknown_client", f"client_id {client_id[:200]!r}")
        redirect_uri = p.get("redirect_uri", "")
        if not client.check_redirect_uri(redirect_uri):
            raise PageError("bad_redirect", f"redirect_uri {redirect_uri!r}")
        state = p.get("state")

        def refuse(error: str, description: str) -> RedirectError:
            return RedirectError(redirect_uri, state, error, description)

        if p.get("response_type") != "code":
            raise refuse("unsupported_response_type", "response_type must be code")
        if not state:
            raise refuse("invalid_request", "state is required")
        challenge = p.get("code_challenge")
        if not challenge:
            raise refuse("invalid_request", "code_challenge is required (PKCE with S256)")
        if p.get("code_challenge_method") != "S256":
            raise refuse("invalid_request", "code_challenge_method must be S256")
        if not _CHALLENGE.match(challenge):
            raise refuse("invalid_request", "code_challenge is not a valid PKCE challenge")
        aud = p.get("aud", "").rstrip("/")
        if aud not in self.audiences:
            raise refuse("invalid_request", "aud must be the base URL of a FHIR server here")
        if p.get("prompt") == "none":
            raise refuse("login_required", "this server always asks the user to sign in")
        requested = p.get("scope", "")
        granted, refused = granted_scopes(requested, client.scopes, PERSON)
        if refused or not granted:
            what = " ".join(refused) or "(none)"
            raise refuse("invalid_scope", f"not registered for this app: {what}")
        context: dict[str, str] = {}
        launch = p.get("launch")
        if launch:
            found = await grants.launch_context(self.db, launch)
            if found is None:
                raise refuse("invalid_request", "the launch is unknown or expired")
            if {"launch", "launch/patient"} & set(granted) and found.get("patient"):
                context["patient"] = found["patient"]
            if {"launch", "launch/encounter"} & set(granted) and found.get("encounter"):
                context["encounter"] = found["encounter"]
        elif "launch" in granted:
            raise refuse("invalid_request", "the launch scope needs the EHR's launch parameter")
        return AuthorizeRequest(
            client=client,
            redirect_uri=redirect_uri,
            state=state,
            scopes=granted,
            code_challenge=challenge,
            nonce=p.get("nonce") or None,
            context=context,
            carried={k: p[k] for k in PARAMS if k in p},
        )

    def language(self, request: Request, p: dict[str, str]) -> str:
        wanted = p.get("ui_locales") or p.get("lang")
        return choose_language(wanted, request.headers.get("accept-language"))

    async def show(self, request: Request) -> Response:
        """GET: the sign-in form, or the error."""
        pairs = parse_qsl(request.url.query, keep_blank_values=True)
        lang = choose_language(None, request.headers.get("accept-language"))
        try:
            p = single_values(pairs)
            lang = self.language(request, p)
            auth = await self.validate(p)
        except PageError as exc:
            return error_page(lang, exc.key, exc.detail)
        except RedirectError as exc:
            return self.error_redirect(exc)
        csrf = secrets.token_urlsafe(32)
        page = login_page(
            lang,
            app_name=auth.client.name,
            scopes=auth.scopes,
            hidden=auth.carried,
            csrf=csrf,
            external=self.external_name,
        )
        page.set_cookie(
            CSRF_COOKIE,
            csrf,
            max_age=1800,
            path="/authorize",
            secure=self.secure_cookie,
            httponly=True,
            samesite="strict",
        )
        return page

    async def posted(self, request: Request) -> Posted | Response:
        """A form the sign-in page posted (to ``/authorize`` or ``/authorize/external``): its
        CSRF token matched and the app's request validated again; else the page or redirect
        that says why."""
        lang = choose_language(None, request.headers.get("accept-language"))
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                return error_page(lang, "bad_request", "the form is too large", 413)
        try:
            p = single_values(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            lang = self.language(request, p)
            cookie = request.cookies.get(CSRF_COOKIE, "")
            if not cookie or not hmac.compare_digest(cookie, p.get("csrf", "")):
                raise PageError("expired", "the CSRF token does not match")
            auth = await self.validate(p)
        except UnicodeDecodeError:
            return error_page(lang, "bad_request", "the form is not UTF-8")
        except PageError as exc:
            return error_page(lang, exc.key, exc.detail)
        except RedirectError as exc:
            return self.error_redirect(exc)
        return Posted(lang, p, auth, cookie)

    async def sign_in(self, request: Request) -> Response:
        """POST: the form's username and password; the code goes to the app."""
        form = await self.posted(request)
        if not isinstance(form, Posted):
            return form
        lang, p, auth, cookie = form
        username = p.get("username", "")
        address = request.client.host if request.client else "unknown"
        user_key = username[:200].casefold()  # usernames are at most 200: bounded memory

        def again(error: str, status: int) -> Response:
            return login_page(
                lang,
                app_name=auth.client.name,
                scopes=auth.scopes,
                hidden=auth.carried,
                csrf=cookie,
                external=self.external_name,
                username=username,
                error=error,
                status=status,
            )

        request_id = getattr(request.state, "request_id", "-")
        if self.per_user.blocked(user_key) or self.per_address.blocked(address):
            await self.refused_login(username, auth, 429, "throttled", request_id)
            return again("throttled", 429)
        user = await authenticate(self.db, username, p.get("password", ""))
        if user is None:
            self.per_user.failed(user_key)
            self.per_address.failed(address)
            await self.refused_login(username, auth, 401, "bad_login", request_id)
            return again("bad_login", 401)
        self.per_user.succeeded(user_key)
        return await self.issue_code(auth, user, "login", request_id)

    async def refused_login(
        self, username: str, auth: AuthorizeRequest, status: int, reason: str, request_id: str
    ) -> None:
        """A refused sign-in names the account only when there is one (what is typed into
        the username field may be a password typed there by mistake)."""
        if self.audit is None:
            return
        known = await get_user_by_name(self.db, username) if username else None
        who = Who(
            known.username if known else "unknown-user",
            auth.client.client_id,
            known.role if known else None,
            known.organization if known else None,
        )
        entities = [("client", auth.client.client_id)]
        if known is not None:
            entities.append(("user", known.user_id))
        await self.audit.record(
            "login", who, status, reason=reason, entities=entities, request_id=request_id
        )

    async def issue_code(
        self, auth: AuthorizeRequest, user: User, how: str, request_id: str
    ) -> Response:
        """The signed-in user's code, sent to the app; ``how`` (``login``, ``external-login``)
        goes on the audit trail."""
        if self.audit is not None:
            entities = [("client", auth.client.client_id), ("user", user.user_id)]
            if user.fhir_user:
                fhir_type, _, fhir_id = user.fhir_user.partition("/")
                entities.append((fhir_type, fhir_id))
            who = Who(user.username, auth.client.client_id, user.role, user.organization)
            await self.audit.record(how, who, 303, entities=entities, request_id=request_id)
        code = await grants.create_code(
            self.db,
            client_id=auth.client.client_id,
            user_id=user.user_id,
            redirect_uri=auth.redirect_uri,
            scope=" ".join(auth.scopes),
            code_challenge=auth.code_challenge,
            nonce=auth.nonce,
            context=auth.context,
            lifetime=self.settings.code_lifetime,
        )
        response = redirect(with_params(auth.redirect_uri, {"code": code, "state": auth.state}))
        response.delete_cookie(CSRF_COOKIE, path="/authorize")
        return response

    def error_redirect(self, exc: RedirectError) -> Response:
        params = {"error": exc.error, "error_description": exc.description}
        if exc.state:
            params["state"] = exc.state
        return redirect(with_params(exc.redirect_uri, params))
