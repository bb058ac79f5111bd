"""What a person's sign-in leaves behind, stored by hash only: EHR launch ids, authorization
codes (single-use, short-lived) and refresh tokens (single-use: each refresh replaces it).

A code or refresh token presented a second time means it leaked or a request was replayed:
every refresh token of that sign-in (its *grant*: the code they descend from) is revoked.
Access tokens are self-contained JWTs of at most 300 s and cannot be recalled; they run out.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from closedloop.db import Database
from sqlalchemy import delete, insert, select, update

from auth.tables import codes, launches, refresh_tokens


def new_secret() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def secret_hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


# --- EHR launches ---


async def create_launch(
    db: Database, context: dict[str, str], created_by: str, lifetime: float
) -> str:
    launch = new_secret()
    now = time.time()
    async with db.write() as conn:
        await conn.execute(delete(launches).where(launches.c.expires_at < now))
        await conn.execute(
            insert(launches).values(
                launch_hash=secret_hash(launch),
                context=json.dumps(context),
                created_by=created_by,
                expires_at=now + lifetime,
            )
        )
    return launch


async def launch_context(db: Database, launch: str) -> dict[str, str] | None:
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(launches.c.context).where(
                    launches.c.launch_hash == secret_hash(launch),
                    launches.c.expires_at >= time.time(),
                )
            )
        ).first()
    return json.loads(row.context) if row else None


# --- authorization codes ---


@dataclass
class StoredCode:
    """An authorization code's row, as Authlib's AuthorizationCodeMixin."""

    code_hash: str
    client_id: str
    user_id: str
    redirect_uri: str
    scope: str
    code_challenge: str
    nonce: str | None
    context: dict[str, str]
    auth_time: float
    expires_at: float
    used_at: float | None
    code_challenge_method: str = "S256"

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return int(self.auth_time)

    def is_expired(self) -> bool:
        return self.expires_at < time.time()


async def create_code(
    db: Database,
    *,
    client_id: str,
    user_id: str,
    redirect_uri: str,
    scope: str,
    code_challenge: str,
    nonce: str | None,
    context: dict[str, str],
    lifetime: float,
) -> str:
    code = new_secret()
    now = time.time()
    async with db.write() as conn:
        await conn.execute(delete(codes).where(codes.c.expires_at < now - 3600))
        await conn.execute(
            insert(codes).values(
                code_hash=secret_hash(code),
                client_id=client_id,
                user_id=user_id,
                redirect_uri=redirect_uri,
                scope=scope,
                code_challenge=code_challenge,
                nonce=nonce,
                context=json.dumps(context),
                auth_time=now,
                expires_at=now + lifetime,
                used_at=None,
            )
        )
    return code


async def find_code(db: Database, code: str) -> StoredCode | None:
    """The code's row whatever its state (used, expired): the caller decides. Used codes are
    kept an hour past expiry so a late replay is still recognised."""
    async with db.read() as conn:
        row = (
            await conn.execute(select(codes).where(codes.c.code_hash == secret_hash(code)))
        ).first()
    if row is None:
        return None
    return StoredCode(
        code_hash=row.code_hash,
        client_id=row.client_id,
        user_id=row.user_id,
        redirect_uri=row.redirect_uri,
        scope=row.scope,
        code_challenge=row.code_challenge,
        nonce=row.nonce,
        context=json.loads(row.context),
        auth_time=row.auth_time,
        expires_at=row.expires_at,
        used_at=row.used_at,
    )


async def use_code(db: Database, code_hash: str) -> bool:
    """Mark the code used; False when another request used it first."""
    async with db.write() as conn:
        result = await conn.execute(
            update(codes)
            .where(codes.c.code_hash == code_hash, codes.c.used_at.is_(None))
            .values(used_at=time.time())
        )
    return bool(result.rowcount)


# --- refresh tokens ---


@dataclass
class StoredRefresh:
    """A refresh token's row, as Authlib's TokenMixin."""

    token_hash: str
    grant_id: str
    client_id: str
    user_id: str
    scope: str
    context: dict[str, str]
    expires_at: float
    used_at: float | None
    revoked: bool

    def check_client(self, client: Any) -> bool:
        return bool(client.client_id == self.client_id)

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return max(0, int(self.expires_at - time.time()))

    def is_expired(self) -> bool:
        return self.expires_at < time.time()

    def is_revoked(self) -> bool:
        return self.revoked or self.used_at is not None


@dataclass
class NewRefresh:
    """A refresh token issued by this request, stored once the response is certain."""

    token: str
    grant_id: str
    client_id: str
    user_id: str
    scope: str
    context: dict[str, str] = field(default_factory=dict)
    expires_at: float = 0.0


async def store_refresh(db: Database, new: NewRefresh) -> None:
    async with db.write() as conn:
        await conn.execute(delete(refresh_tokens).where(refresh_tokens.c.expires_at < time.time()))
        await conn.execute(
            insert(refresh_tokens).values(
                token_hash=secret_hash(new.token),
                grant_id=new.grant_id,
                client_id=new.client_id,
                user_id=new.user_id,
                scope=new.scope,
                context=json.dumps(new.context),
                expires_at=new.expires_at,
                used_at=None,
                revoked=False,
            )
        )


async def find_refresh(db: Database, token: str) -> StoredRefresh | None:
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(refresh_tokens).where(refresh_tokens.c.token_hash == secret_hash(token))
            )
        ).first()
    if row is None:
        return None
    return StoredRefresh(
        token_hash=row.token_hash,
        grant_id=row.grant_id,
        client_id=row.client_id,
        user_id=row.user_id,
        scope=row.scope,
        context=json.loads(row.context),
        expires_at=row.expires_at,
        used_at=row.used_at,
        revoked=bool(row.revoked),
    )


async def use_refresh(db: Database, token_hash: str) -> bool:
    """Mark the refresh token used; False when it was used or revoked meanwhile."""
    async with db.write() as conn:
        result = await conn.execute(
            update(refresh_tokens)
            .where(
                refresh_tokens.c.token_hash == token_hash,
                refresh_tokens.c.used_at.is_(None),
                refresh_tokens.c.revoked.is_(False),
            )
            .values(used_at=time.time())
        )
    return bool(result.rowcount)


async def revoke_grant(db: Database, grant_id: str) -> None:
    """Every refresh token of the sign-in: after a replayed code or refresh token."""
    async with db.write() as conn:
        await conn.execute(
            update(refresh_tokens).where(refresh_tokens.c.grant_id == grant_id).values(revoked=True)
        )
