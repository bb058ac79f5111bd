"""Registered clients: the rows, and the Authlib client model built from them.

Three kinds: a backend client (keys, ``system/`` scopes, ``client_credentials``); an app people
sign in to, confidential (keys and redirect URIs: ``private_key_jwt`` at the token endpoint) or
public (redirect URIs and no keys: PKCE is its only proof, ``none`` at the token endpoint)."""

from __future__ import annotations

import ipaddress
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import ClientMixin
from closedloop.auth.roles import CLIENT_ROLES
from closedloop.db import Database
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from auth.scopes import parse_scopes
from auth.tables import clients

AUTH_METHOD = "private_key_jwt"
PUBLIC_AUTH_METHOD = "none"
# the key types a client assertion's alg needs (SMART: RS384 or ES384)
KTY_FOR_ALG = {"RS384": "RSA", "ES384": "EC"}


class ClientError(ValueError):
    pass


@dataclass
class Client(ClientMixin):
    client_id: str
    name: str
    scopes: list[str]
    jwks: dict[str, Any] | None = None
    jwks_url: str | None = None
    organization: str | None = None
    disabled: bool = False
    redirect_uris: list[str] = field(default_factory=list)
    public: bool = False
    role: str | None = None  # closedloop.auth.roles.CLIENT_ROLES; goes into its tokens
    # the key that verifies this request's assertion, picked before Authlib runs (see server)
    verification_key: Any = field(default=None, repr=False)

    def get_client_id(self) -> str:
        return self.client_id

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        wanted = PUBLIC_AUTH_METHOD if self.public else AUTH_METHOD
        return method == wanted and endpoint == "token"

    def check_grant_type(self, grant_type: str) -> bool:
        if grant_type == "client_credentials":
            return not self.public and any(s.startswith("system/") for s in self.scopes)
        if grant_type == "authorization_code":
            return bool(self.redirect_uris)
        if grant_type == "refresh_token":
            return bool(self.redirect_uris) and bool(
                {"offline_access", "online_access"} & set(self.scopes)
            )
        return False

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """Exact match against a registered URI: no prefix, no pattern."""
        return redirect_uri in self.redirect_uris

    def get_default_redirect_uri(self) -> str | None:
        return None  # SMART apps always send redirect_uri

    def check_client_secret(self, client_secret: str) -> bool:
        return False  # no client has a secret here

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in scope.split() if s in self.scopes)


def check_public_jwks(jwks: Any) -> dict[str, Any]:
    """A client's JWKS as SMART wants it: public RSA or EC keys, each with a kid."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise ClientError('a JWKS is a JSON object with a non-empty "keys" array')
    for key in jwks["keys"]:
        if not isinstance(key, dict) or key.get("kty") not in ("RSA", "EC"):
            raise ClientError("every key needs kty RSA or EC")
        if not isinstance(key.get("kid"), str) or not key["kid"]:
            raise ClientError("every key needs a kid")
        if "d" in key or "p" in key:
            raise ClientError(f"key {key['kid']!r} holds private parts: register the public key")
    return jwks


def _row_to_client(row: Any) -> Client:
    return Client(
        client_id=row.client_id,
        name=row.name,
        scopes=row.scopes.split(),
        jwks=json.loads(row.jwks) if row.jwks else None,
        jwks_url=row.jwks_url,
        organization=row.organization,
        disabled=bool(row.disabled),
        redirect_uris=json.loads(row.redirect_uris) if row.redirect_uris else [],
        public=bool(row.public),
        role=row.role,
    )


def check_redirect_uri(uri: str) -> str:
    """An absolute URI without a fragment: https, http only on loopback, or a native app's
    private-use scheme (RFC 8252: a reverse domain name, e.g. org.example.app:/callback)."""
    parts = urlsplit(uri)
    if not parts.scheme or parts.fragment or "#" in uri or any(c.isspace() for c in uri):
        raise ClientError(f"redirect URI {uri!r}: an absolute URI without a fragment")
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return uri
    if parts.scheme == "http":
        try:
            if host == "localhost" or ipaddress.ip_address(host).is_loopback:
                return uri
        except ValueError:
            pass
        raise ClientError(f"redirect URI {uri!r}: http only on loopback, https otherwise")
    if "." in parts.scheme:
        return uri
    raise ClientError(f"redirect URI {uri!r}: https, loopback http, or a reverse-domain scheme")


def _client_role(role: str | None, organization: str | None) -> str | None:
    """A client acting for an organization is a requester unless it says it is a CBO; the
    platform's own services and admins act for none. A client with neither an organization nor
    a role gets no role: policy lets it see no organization's data."""
    if role is None:
        return "requester" if organization else None
    if role not in CLIENT_ROLES:
        raise ClientError(f"a client's role is one of {', '.join(CLIENT_ROLES)}")
    if role in ("requester", "cbo") and organization is None:
        raise ClientError(f"a {role} client acts for an organization: give --organization")
    if role in ("service", "admin") and organization is not None:
        raise ClientError(f"a {role} client acts for no organization: drop --organization")
    return role


async def add_client(
    db: Database,
    *,
    client_id: str,
    name: str,
    scopes: str,
    jwks: dict[str, Any] | None = None,
    jwks_url: str | None = None,
    organization: str | None = None,
    redirect_uris: list[str] | None = None,
    public: bool = False,
    role: str | None = None,
) -> Client:
    if not client_id or len(client_id) > 200 or any(c.isspace() for c in client_id):
        raise ClientError("a client id is 1-200 characters without spaces")
    redirect_uris = [check_redirect_uri(u) for u in dict.fromkeys(redirect_uris or [])]
    if public:
        if jwks is not None or jwks_url is not None:
            raise ClientError("a public client has no keys")
        if not redirect_uris:
            raise ClientError("a public client needs at least one redirect URI")
    elif (jwks is None) == (jwks_url is None):
        raise ClientError("give exactly one of a JWKS and a JWKS URL")
    if jwks_url is not None and not jwks_url.startswith(("https://", "http://")):
        raise ClientError("the JWKS URL must be http(s)")
    if jwks is not None:
        check_public_jwks(jwks)
    try:
        granted = parse_scopes(scopes, people=bool(redirect_uris))
    except ValueError as exc:
        raise ClientError(str(exc)) from None
    if not granted:
        raise ClientError("register at least one scope")
    if public and any(s.startswith("system/") for s in granted):
        raise ClientError("a public client cannot hold system/ scopes")
    if organization is not None and not organization.startswith("Organization/"):
        raise ClientError("the organization is a reference like Organization/123")
    role = _client_role(role, organization)
    row = {
        "client_id": client_id,
        "name": name,
        "jwks": json.dumps(jwks) if jwks is not None else None,
        "jwks_url": jwks_url,
        "scopes": " ".join(granted),
        "organization": organization,
        "disabled": False,
        "created_at": time.time(),
        "redirect_uris": json.dumps(redirect_uris) if redirect_uris else None,
        "public": public,
        "role": role,
    }
    try:
        async with db.write() as conn:
            await conn.execute(insert(clients).values(**row))
    except IntegrityError:
        raise ClientError(f"client {client_id!r} is already registered") from None
    return await get_client(db, client_id)  # type: ignore[return-value]


async def get_client(db: Database, client_id: str) -> Client | None:
    async with db.read() as conn:
        row = (await conn.execute(select(clients).where(clients.c.client_id == client_id))).first()
    return _row_to_client(row) if row else None


async def list_clients(db: Database) -> list[Client]:
    async with db.read() as conn:
        rows = (await conn.execute(select(clients).order_by(clients.c.client_id))).all()
    return [_row_to_client(r) for r in rows]


async def disable_client(db: Database, client_id: str) -> bool:
    async with db.write() as conn:
        result = await conn.execute(
            update(clients).where(clients.c.client_id == client_id).values(disabled=True)
        )
    return bool(result.rowcount)


async def update_terms(
    db: Database,
    client_id: str,
    *,
    name: str,
    scopes: str,
    organization: str | None = None,
    redirect_uris: list[str] | None = None,
    role: str | None = None,
) -> Client | None:
    """Bring a client's name, scopes, organization, role and redirect URIs to these (its keys
    stay): ``clients ensure`` after an upgrade that grants the app more. Checked as in
    ``add_client``; None if there is no such client."""
    existing = await get_client(db, client_id)
    if existing is None:
        return None
    redirect_uris = [check_redirect_uri(u) for u in dict.fromkeys(redirect_uris or [])]
    if existing.public and not redirect_uris:
        raise ClientError("a public client needs at least one redirect URI")
    try:
        granted = parse_scopes(scopes, people=bool(redirect_uris))
    except ValueError as exc:
        raise ClientError(str(exc)) from None
    if not granted:
        raise ClientError("register at least one scope")
    if existing.public and any(s.startswith("system/") for s in granted):
        raise ClientError("a public client cannot hold system/ scopes")
    if organization is not None and not organization.startswith("Organization/"):
        raise ClientError("the organization is a reference like Organization/123")
    values = {
        "name": name,
        "scopes": " ".join(granted),
        "organization": organization,
        "redirect_uris": json.dumps(redirect_uris) if redirect_uris else None,
        "role": _client_role(role, organization),
    }
    async with db.write() as conn:
        await conn.execute(update(clients).where(clients.c.client_id == client_id).values(**values))
    return await get_client(db, client_id)
