"""The token endpoint on Authlib: an ``AuthorizationServer`` for Starlette requests; the
``client_credentials`` grant with RFC 7523 ``private_key_jwt`` client authentication (backend
services), and for people the ``authorization_code`` grant (PKCE S256 always) and the
``refresh_token`` grant (rotation), for public clients (``none``) and confidential ones.

Authlib runs synchronously, the database does not: everything Authlib will ask for (the
client, the key its assertion names, our signing key, whether the assertion id was used) is
looked up first (``TokenEndpoint.prepare``), then Authlib validates and issues the token, and
only then are the assertion id recorded and the code or refresh token marked used; if another
request got there meanwhile, the token is never sent.

Every token comes out of ``generate_access_token``: one format, one signing path. Every
decision goes on the audit trail (``TokenEndpoint.audit_decision``): who asked, for which
grant, the outcome, and for a refusal the reason one of the checks here noted
(``Prepared.refuse``), never the assertion, code or token itself.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Payload,
    OAuth2Request,
)
from authlib.oauth2.rfc6749.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    RefreshTokenGrant,
)
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from joserfc import jws, jwt
from joserfc.errors import JoseError
from starlette.responses import JSONResponse, Response

from auth import grants, jtis
from auth.audit.decisions import AuthAudit, Who
from auth.client_keys import JwksCache, KeyNotFound
from auth.clients import AUTH_METHOD, PUBLIC_AUTH_METHOD, Client, get_client
from auth.keys import ID_TOKEN_ALG, SigningKey, current_key
from auth.scopes import PERSON, SYSTEM, granted_scopes
from auth.settings import Settings
from auth.users import User, get_user

ASSERTION_ALGS = ["RS384", "ES384"]  # SMART's two; never none, HS*, or anything else
MAX_ASSERTION_AHEAD = 300  # seconds: an assertion's exp is at most 5 minutes away
LEEWAY = 30  # seconds of clock skew allowed on an assertion's exp
MAX_FORM_BYTES = 64 * 1024
GRANT_TYPES = ("client_credentials", "authorization_code", "refresh_token")


@dataclass
class Prepared:
    """What the async side looked up for one token request."""

    client: Client | None = None
    key_error: str | None = None
    replayed: bool = False
    signing_key: SigningKey | None = None
    id_token_key: SigningKey | None = None
    used: dict[str, Any] = field(default_factory=dict)  # client_id, jti, expires_at
    # people: the code or refresh token presented (None when unknown, used or expired), the
    # user it names, and what to record once the token is certain to go out
    code: grants.StoredCode | None = None
    refresh: grants.StoredRefresh | None = None
    user: User | None = None
    new_refresh: grants.NewRefresh | None = None
    # why the request is refused, when a check of ours knows (auth.audit.decisions.REASONS)
    reason: str | None = None
    claimed_client: str | None = None  # the client the request names, before it is verified

    def refuse(self, reason: str) -> None:
        self.reason = self.reason or reason


class FormPayload(OAuth2Payload):
    def __init__(self, form: dict[str, str], datalist: dict[str, list[str]]) -> None:
        self._form = form
        self._datalist = defaultdict(list, datalist)

    @property
    def data(self) -> dict[str, str]:
        return self._form

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class StarletteOAuth2Request(OAuth2Request):
    """An OAuth2Request from a form body already read (the token endpoint takes no query)."""

    def __init__(self, uri: str, headers: dict[str, str], pairs: list[tuple[str, str]]) -> None:
        super().__init__(method="POST", uri=uri, headers=headers)
        datalist: dict[str, list[str]] = {}
        for k, v in pairs:
            datalist.setdefault(k, []).append(v)
        self._form = {k: v[0] for k, v in datalist.items()}
        self.payload = FormPayload(self._form, datalist)
        self.prepared = Prepared()

    @property
    def args(self) -> dict[str, str]:
        return {}

    @property
    def form(self) -> dict[str, str]:
        return self._form


class PrivateKeyJWT(JWTBearerClientAssertion):
    """RFC 7523 client assertions under SMART's rules: RS384/ES384 only, ``aud`` the token
    URL, ``exp`` at most five minutes ahead, ``jti`` never reused."""

    CLIENT_AUTH_METHOD = AUTH_METHOD

    def __init__(self, token_url: str) -> None:
        super().__init__(validate_jti=True, leeway=LEEWAY)
        self.audience = token_url
        self._request: StarletteOAuth2Request | None = None

    def __call__(self, query_client: Any, request: Any) -> Any:
        self._request = request
        return super().__call__(query_client, request)

    def get_audiences(self) -> list[str]:
        return [self.audience]

    def resolve_client_public_key(self, client: Client) -> Any:
        assert self._request is not None
        error = self._request.prepared.key_error
        if error is not None or client.verification_key is None:
            self._request.prepared.refuse("unknown_key")
            raise InvalidClientError(status_code=401, description=error or "no key")
        return client.verification_key

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> Any:
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=ASSERTION_ALGS)
        except JoseError as exc:
            assert self._request is not None
            try:
                alg = jws.extract_compact(assertion.encode()).headers().get("alg")
            except (JoseError, ValueError):
                alg = None
            self._request.prepared.refuse("bad_signature" if alg in ASSERTION_ALGS else "bad_alg")
            raise InvalidClientError(
                status_code=401, description=f"assertion refused: {exc.description or exc.error}"
            ) from None
        self.verify_claims(token.claims)
        return token.claims

    def verify_claims(self, claims: Any) -> None:
        assert self._request is not None
        prepared = self._request.prepared
        try:
            super().verify_claims(claims)
        except InvalidClientError as exc:
            exc.status_code = 401
            prepared.refuse(self._reason(claims))
            raise
        exp = claims["exp"]
        if not isinstance(exp, int | float) or exp > time.time() + MAX_ASSERTION_AHEAD + LEEWAY:
            prepared.refuse("exp_too_far")
            raise InvalidClientError(
                status_code=401, description="the assertion's exp is more than 5 minutes ahead"
            )

    def _reason(self, claims: Any) -> str:
        """Which claim Authlib refused, for the audit trail."""
        aud = claims.get("aud")
        if self.audience not in (aud if isinstance(aud, list) else [aud]):
            return "wrong_aud"
        exp = claims.get("exp")
        if isinstance(exp, int | float) and exp + LEEWAY < time.time():
            return "expired"
        assert self._request is not None
        return "replayed_jti" if self._request.prepared.replayed else "bad_claims"

    def validate_jti(self, claims: Any, jti: Any) -> bool:
        assert self._request is not None
        if not isinstance(jti, str) or not jti or len(jti) > 255:
            return False
        if self._request.prepared.replayed:
            return False
        self._request.prepared.used = {
            "client_id": claims["sub"],
            "jti": jti,
            "expires_at": float(claims["exp"]) + LEEWAY,
        }
        return True


class SystemClientCredentials(ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = [AUTH_METHOD]

    def validate_requested_scope(self) -> None:
        requested = self.request.payload.scope
        if not requested:
            self.request.prepared.refuse("bad_scope")
            raise InvalidScopeError(description="scope is required (e.g. system/Task.rs)")
        _, refused = granted_scopes(requested, self.request.client.scopes, SYSTEM)
        if refused:
            self.request.prepared.refuse("bad_scope")
            raise InvalidScopeError(
                description=f"not registered for this client: {' '.join(refused)}"
            )


class S256Challenge(CodeChallenge):
    """PKCE with S256 only. Every code carries a challenge (``/authorize`` refuses a request
    without one; Authlib's ``required=True`` alone would not), so a token request without the
    matching verifier always fails."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    CODE_CHALLENGE_METHODS = {"S256": CodeChallenge.CODE_CHALLENGE_METHODS["S256"]}

    def validate_code_verifier(self, grant: Any, result: Any = None) -> None:
        try:
            super().validate_code_verifier(grant, result)
        except (InvalidRequestError, InvalidGrantError):
            grant.request.prepared.refuse("bad_pkce")
            raise


class PeopleAuthorizationCode(AuthorizationCodeGrant):
    """The code issued by ``/authorize`` (see ``auth.authorize``) exchanged for tokens."""

    TOKEN_ENDPOINT_AUTH_METHODS = [PUBLIC_AUTH_METHOD, AUTH_METHOD]

    def query_authorization_code(self, code: str, client: Client) -> Any:
        stored = self.request.prepared.code
        if stored is None or stored.client_id != client.client_id or stored.is_expired():
            self.request.prepared.refuse("bad_code")
            return None
        return stored

    def delete_authorization_code(self, authorization_code: Any) -> None:
        """Marked used by ``TokenEndpoint.respond`` once the response is certain."""

    def authenticate_user(self, authorization_code: Any) -> User | None:
        user = self.request.prepared.user
        if user is None or user.disabled or user.user_id != authorization_code.user_id:
            self.request.prepared.refuse("user_disabled")
            raise InvalidGrantError(description="the user is not active")
        return user


class RotatingRefreshToken(RefreshTokenGrant):
    """A refresh token is used once: the response carries its replacement."""

    TOKEN_ENDPOINT_AUTH_METHODS = [PUBLIC_AUTH_METHOD, AUTH_METHOD]
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> Any:
        stored = self.request.prepared.refresh
        if stored is None or stored.is_revoked() or stored.is_expired():
            self.request.prepared.refuse("refresh_refused")
            return None
        return stored

    def authenticate_user(self, refresh_token: Any) -> User | None:
        user = self.request.prepared.user
        if user is None or user.disabled or user.user_id != refresh_token.user_id:
            self.request.prepared.refuse("user_disabled")
            raise InvalidGrantError(description="the user is not active")
        return user

    def _validate_token_scope(self, token: Any) -> None:
        """A narrower scope may be asked (``user/Task.rs`` covers ``user/Task.r``)."""
        requested = self.request.payload.scope
        if requested:
            _, refused = granted_scopes(requested, token.get_scope().split(), PERSON)
            if refused:
                self.request.prepared.refuse("bad_scope")
                raise InvalidScopeError(description=f"not granted before: {' '.join(refused)}")

    def revoke_old_credential(self, refresh_token: Any) -> None:
        """Marked used by ``TokenEndpoint.respond`` once the response is certain."""


class SmartAuthorizationServer(AuthorizationServer):
    """Authlib's server for Starlette: requests come in as ``StarletteOAuth2Request``
    (built by ``TokenEndpoint``), responses go out as Starlette responses.

    One instance serves every request; ``_current`` (and ``PrivateKeyJWT._request``) hold the
    request being handled. That is safe because ``create_token_response`` runs start to end
    without an ``await``: no other request can run in between."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(scopes_supported=None)
        self.settings = settings
        self.register_grant(SystemClientCredentials)
        self.register_grant(PeopleAuthorizationCode, [S256Challenge(required=True)])
        self.register_grant(RotatingRefreshToken)
        self.register_client_auth_method(AUTH_METHOD, PrivateKeyJWT(settings.token_url))
        self.register_token_generator("default", self.generate_access_token)
        self._current: StarletteOAuth2Request | None = None

    def query_client(self, client_id: str) -> Client | None:
        assert self._current is not None
        client = self._current.prepared.client
        if client is None or client.client_id != client_id:
            self._current.prepared.refuse("unknown_client")
            return None
        if client.disabled:
            self._current.prepared.refuse("disabled_client")
            raise InvalidClientError(status_code=401, description="the client is disabled")
        return client

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        """Access tokens are self-contained JWTs: nothing to store."""

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No signal system here."""

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        assert isinstance(request, StarletteOAuth2Request)
        self._current = request
        return request

    def create_json_request(self, request: Any) -> Any:
        raise NotImplementedError("this server has no JSON endpoints")

    def handle_response(self, status: int, body: Any, headers: Any) -> Response:
        return JSONResponse(body, status_code=status, headers=dict(headers))

    def handle_error_response(self, request: Any, error: Any) -> Response:
        return error_response(error)

    def generate_access_token(
        self,
        grant_type: str,
        client: Client,
        user: Any = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = False,
    ) -> dict[str, Any]:
        assert self._current is not None and self._current.prepared.signing_key is not None
        prepared = self._current.prepared
        key = prepared.signing_key
        assert key is not None
        contexts = SYSTEM if grant_type == "client_credentials" else PERSON
        granted, _ = granted_scopes(scope or "", client.scopes, contexts)
        now = int(time.time())
        lifetime = self.settings.token_lifetime
        audiences = self.settings.audience_list
        claims: dict[str, Any] = {
            "iss": self.settings.issuer,
            "sub": client.client_id,
            "aud": audiences[0] if len(audiences) == 1 else audiences,
            "iat": now,
            "exp": now + lifetime,
            "jti": uuid.uuid4().hex,
            "client_id": client.client_id,
            "scope": " ".join(granted),
        }
        if client.organization:
            claims["organization"] = client.organization
        if client.role:
            claims["role"] = client.role
        context: dict[str, str] = {}
        if isinstance(user, User):
            # a person's token: who (sub, fhirUser), for which organization, in which role
            claims["sub"] = user.user_id
            claims["organization"] = user.organization
            claims["role"] = user.role
            if user.fhir_user:
                claims["fhirUser"] = user.fhir_user
            stored = prepared.code or prepared.refresh
            context = dict(stored.context) if stored else {}
            if "patient" in context:
                claims["patient"] = context["patient"]
        header = {"alg": key.alg, "kid": key.kid, "typ": "at+jwt"}
        token = jwt.encode(header, claims, key.key, algorithms=[key.alg])
        body: dict[str, Any] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": lifetime,
            "scope": claims["scope"],
            **context,
        }
        if isinstance(user, User):
            if "openid" in granted:
                body["id_token"] = self.id_token(client, user, granted, now)
            if include_refresh_token:
                self.new_refresh_token(body, client, user, granted, context)
        return body

    def id_token(self, client: Client, user: User, granted: list[str], now: int) -> str:
        """OpenID Connect's id_token, signed RS256 (OpenID's default alg) with the server's
        id_token key; ``nonce`` echoed from the authorization request."""
        assert self._current is not None
        prepared = self._current.prepared
        key = prepared.id_token_key
        assert key is not None
        claims: dict[str, Any] = {
            "iss": self.settings.issuer,
            "sub": user.user_id,
            "aud": client.client_id,
            "azp": client.client_id,
            "iat": now,
            "exp": now + self.settings.token_lifetime,
        }
        if prepared.code is not None:
            claims["auth_time"] = prepared.code.get_auth_time()
            if prepared.code.nonce:
                claims["nonce"] = prepared.code.nonce
        if "fhirUser" in granted and user.fhir_user:
            claims["fhirUser"] = f"{self.settings.fhir_user_base}/{user.fhir_user}"
        header = {"alg": key.alg, "kid": key.kid, "typ": "JWT"}
        return jwt.encode(header, claims, key.key, algorithms=[key.alg])

    def new_refresh_token(
        self,
        body: dict[str, Any],
        client: Client,
        user: User,
        granted: list[str],
        context: dict[str, str],
    ) -> None:
        """A refresh token only for offline_access or online_access; a rotated one keeps its
        grant and its expiry (rotation never extends a sign-in)."""
        assert self._current is not None
        prepared = self._current.prepared
        scope = " ".join(granted)
        if prepared.refresh is not None:  # the replacement keeps the sign-in's full scope
            grant_id, expires_at = prepared.refresh.grant_id, prepared.refresh.expires_at
            scope = prepared.refresh.scope
        elif prepared.code is not None and {"offline_access", "online_access"} & set(granted):
            lifetime = (
                self.settings.refresh_lifetime
                if "offline_access" in granted
                else self.settings.online_refresh_lifetime
            )
            grant_id, expires_at = prepared.code.code_hash, time.time() + lifetime
        else:
            return
        token = grants.new_secret()
        prepared.new_refresh = grants.NewRefresh(
            token=token,
            grant_id=grant_id,
            client_id=client.client_id,
            user_id=user.user_id,
            scope=scope,
            context=context,
            expires_at=expires_at,
        )
        body["refresh_token"] = token


def error_response(error: Any) -> Response:
    """An RFC 6749 error; a failed client authentication is always a 401 (no WWW-Authenticate:
    Authlib's names Basic, which these clients do not use)."""
    if isinstance(error, InvalidClientError):
        error.status_code = 401
    status, body, headers = error()
    kept = {k: v for k, v in headers if k.lower() != "www-authenticate"}
    return JSONResponse(body, status_code=status, headers=kept)


class TokenEndpoint:
    """``POST /token``: the async lookups around Authlib's synchronous validation."""

    def __init__(self, settings: Settings, db: Any, audit: AuthAudit | None = None) -> None:
        self.settings = settings
        self.db = db
        self.audit = audit
        self.server = SmartAuthorizationServer(settings)
        self.jwks = JwksCache(settings.jwks_cache_seconds, settings.jwks_timeout)
        self._key: SigningKey | None = None
        self._id_key: SigningKey | None = None
        self._key_loaded = 0.0

    async def signing_key(self) -> SigningKey:
        """The current key, reread now and then so a rotation by `auth keys rotate` (another
        process) takes over within AUTH_KEY_REFRESH_SECONDS."""
        await self._reload_keys()
        assert self._key is not None
        return self._key

    async def id_token_key(self) -> SigningKey:
        await self._reload_keys()
        assert self._id_key is not None
        return self._id_key

    async def _reload_keys(self) -> None:
        now = time.monotonic()
        if self._key is None or now - self._key_loaded > self.settings.key_refresh_seconds:
            secret = self.settings.key_secret
            plain = secret.get_secret_value() if secret else None
            self._key = await current_key(self.db, plain)
            self._id_key = await current_key(self.db, plain, ID_TOKEN_ALG)
            self._key_loaded = now

    async def prepare(self, request: StarletteOAuth2Request) -> None:
        prepared = request.prepared
        prepared.signing_key = await self.signing_key()
        prepared.id_token_key = await self.id_token_key()
        await self.prepare_grant(request)
        assertion = request.form.get("client_assertion")
        if not assertion:
            client_id = request.form.get("client_id")  # a public client names itself
            prepared.claimed_client = client_id[:200] if client_id else None
            if client_id:
                prepared.client = await get_client(self.db, client_id[:200])
            return
        try:
            compact = jws.extract_compact(assertion.encode())
            header = compact.headers()
            unverified = json.loads(compact.payload)  # only to find the client: verified later
        except (JoseError, ValueError, UnicodeError):
            return  # Authlib refuses it with invalid_client
        if not isinstance(unverified, dict) or not isinstance(unverified.get("sub"), str):
            return
        prepared.claimed_client = unverified["sub"][:200]
        if header.get("alg") not in ASSERTION_ALGS:
            prepared.refuse("bad_alg")  # none, HS256 with the public key...: no key is looked at
        client = await get_client(self.db, unverified["sub"][:200])
        prepared.client = client
        if client is None or client.disabled:
            return
        try:
            client.verification_key = await self.jwks.key_for(client, header)
        except KeyNotFound as exc:
            prepared.key_error = str(exc)
        jti = unverified.get("jti")
        if isinstance(jti, str) and jti:
            prepared.replayed = await jtis.seen(self.db, client.client_id, jti)

    async def prepare_grant(self, request: StarletteOAuth2Request) -> None:
        """The code or refresh token presented, and its user. One presented again (used, or
        revoked) revokes every refresh token of its sign-in; Authlib then refuses it."""
        prepared = request.prepared
        grant_type = request.form.get("grant_type")
        stored: grants.StoredCode | grants.StoredRefresh | None = None
        if grant_type == "authorization_code" and request.form.get("code"):
            stored = await grants.find_code(self.db, request.form["code"][:200])
            if stored is not None and stored.used_at is not None:
                await grants.revoke_grant(self.db, stored.code_hash)
                prepared.refuse("code_reused")
                prepared.user = await get_user(self.db, stored.user_id)  # for the trail
                return
            prepared.code = stored
        elif grant_type == "refresh_token" and request.form.get("refresh_token"):
            stored = await grants.find_refresh(self.db, request.form["refresh_token"][:200])
            if stored is not None and stored.is_revoked():
                await grants.revoke_grant(self.db, stored.grant_id)
                prepared.refuse("refresh_reused")
                prepared.user = await get_user(self.db, stored.user_id)  # for the trail
                return
            prepared.refresh = stored
        if stored is not None:
            prepared.user = await get_user(self.db, stored.user_id)

    async def record(self, request: StarletteOAuth2Request) -> str | None:
        """After Authlib said yes: the assertion id, the code or refresh token spent, the new
        refresh token kept. Returns why the token must not go out, if another request spent
        the same thing meanwhile."""
        prepared = request.prepared
        if request.auth_method == AUTH_METHOD and (
            not prepared.used or not await jtis.use(self.db, **prepared.used)
        ):
            prepared.refuse("replayed_jti")
            return "JWT ID is used before."
        if prepared.code is not None and not await grants.use_code(
            self.db, prepared.code.code_hash
        ):
            await grants.revoke_grant(self.db, prepared.code.code_hash)
            prepared.refuse("code_reused")
            return "the code was used before"
        if prepared.refresh is not None and not await grants.use_refresh(
            self.db, prepared.refresh.token_hash
        ):
            await grants.revoke_grant(self.db, prepared.refresh.grant_id)
            prepared.refuse("refresh_reused")
            return "the refresh token was used before"
        if prepared.new_refresh is not None:
            await grants.store_refresh(self.db, prepared.new_refresh)
        return None

    async def respond(
        self, uri: str, headers: dict[str, str], body: bytes, request_id: str = "-"
    ) -> Response:
        """The token response; the decision goes on the audit trail."""
        response, request = await self._respond(uri, headers, body)
        if self.audit is not None:
            await self.audit_decision(response, request, request_id)
        return response

    async def audit_decision(
        self, response: Response, request: StarletteOAuth2Request | None, request_id: str
    ) -> None:
        """Who asked for which grant, and the outcome; for a refusal, the reason our checks
        noted, else the RFC 6749 error code. Never the assertion, code or token itself."""
        assert self.audit is not None
        form = request.form if request is not None else {}
        grant_type = form.get("grant_type", "")
        subtype = grant_type if grant_type in GRANT_TYPES else "token"
        prepared = request.prepared if request is not None else Prepared()
        client = prepared.client
        client_id = client.client_id if client else prepared.claimed_client
        who = Who(
            client_id,
            client_id,
            client.role if client else None,
            client.organization if client else None,
        )
        entities: list[tuple[str, str]] = [("client", client_id)] if client_id else []
        user = prepared.user
        if user is not None:
            who = Who(user.username, client_id, user.role, user.organization)
            entities.append(("user", user.user_id))
            if user.fhir_user:
                fhir_type, _, fhir_id = user.fhir_user.partition("/")
                entities.append((fhir_type, fhir_id))
        reason = None
        if response.status_code != 200:
            reason = prepared.reason
            if reason is None:
                try:
                    reason = str(json.loads(bytes(response.body)).get("error", "refused"))
                except ValueError:
                    reason = "refused"
        await self.audit.record(
            subtype,
            who,
            response.status_code,
            reason=reason,
            entities=entities,
            request_id=request_id,
        )

    async def _respond(
        self, uri: str, headers: dict[str, str], body: bytes
    ) -> tuple[Response, StarletteOAuth2Request | None]:
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            return error_response(InvalidRequestError(description="the form is not UTF-8")), None
        names = [k for k, _ in pairs]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            error = InvalidRequestError(description=f"repeated parameters: {', '.join(duplicated)}")
            return error_response(error), None
        request = StarletteOAuth2Request(uri, headers, pairs)
        await self.prepare(request)
        response = self.server.create_token_response(request)
        if response.status_code != 200:
            return response, request
        refused = await self.record(request)
        if refused is None:
            return response, request
        if request.auth_method == AUTH_METHOD and "JWT ID" in refused:
            return error_response(InvalidClientError(status_code=401, description=refused)), request
        return error_response(InvalidGrantError(description=refused)), request
